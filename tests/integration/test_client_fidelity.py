"""The client against the real server's behaviours that the emulator now reproduces
(docs/protocol.md): a limit refusal without channel/id, the unsubscribe race, empty subaccounts."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List

import pytest

from dydx_ws import CandleResolution, DydxWebSocketClient
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.engine._subscriptions import SubscriptionState
from tests.helpers.sdk_client import FAST_EMULATOR, FAST_RECONNECT, make_client
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def make_emu() -> Any:
    started: List[IndexerEmulator] = []

    def make(**kwargs: Any) -> IndexerEmulator:
        options = {**FAST_EMULATOR, "markets": ["BTC-USD", "ETH-USD"], "seed": 11, **kwargs}
        emu = IndexerEmulator(**options)  # type: ignore[arg-type]
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


def test_limit_refusal_of_a_retry_is_charged_to_the_retried_subscription(
    make_emu: Callable[..., IndexerEmulator],
) -> None:
    """The channel is at its limit when the client retries a failed snapshot fetch: the server's
    refusal (no channel, no id) belongs to that retry, not to the newest pending subscription."""
    emu = make_emu(channel_limits={"v4_candles": 2})
    errors: List[Any] = []
    fetch_failed = threading.Event()

    def on_error(event: Any) -> None:
        errors.append(event)
        if event.kind == "server" and event.message.startswith("Internal error"):
            fetch_failed.set()

    with make_client(emu, check_interval=None) as client:
        client.on("error", on_error)
        client.start()
        first = client.subscribe_candles("BTC-USD", CandleResolution.ONE_MINUTE)
        assert first.wait_subscribed(10)
        emu.fail_subscriptions(1)  # the next fetch fails: the client retries it after ~1 s
        retried = client.subscribe_candles("BTC-USD", CandleResolution.FIVE_MINUTES)
        assert fetch_failed.wait(10)
        emu.set_snapshot_delay(4.0)  # the next one stays in flight (it counts toward the limit)
        healthy = client.subscribe_candles("BTC-USD", CandleResolution.FIFTEEN_MINUTES)
        # the refusal is the retry's: it moves to a second connection; nothing fails
        assert retried.wait_subscribed(15)
        assert healthy.wait_subscribed(15)
        assert (first.connection, healthy.connection, retried.connection) == (0, 0, 1)
        assert client.stats()["subscription_moves"] == 1
        refusals = [e for e in errors if e.kind == "server" and "limit" in e.message]
        assert len(refusals) == 1
        assert not [e for e in errors if e.kind == "subscription"]


def test_unsubscribe_while_the_snapshot_is_pending_ends_it_on_the_server(
    make_emu: Callable[..., IndexerEmulator],
) -> None:
    """The server answers ``unsubscribed`` first and then still sends ``subscribed`` and keeps the
    subscription: the client must end it again."""
    emu = make_emu(snapshot_delay=1.0)
    with make_client(emu, check_interval=None) as client:
        client.start()
        assert client.wait_connected(10)
        sub = client.subscribe_trades("ETH-USD")
        # written on the wire (an unsubscribe replaces a subscribe still queued)
        wait_until(lambda: sub._entry.sent_seq > 0)
        sub.unsubscribe()
        # the late ``subscribed`` registers it server-side; the client then unsubscribes again
        wait_until(lambda: client.stats()["unrouted"] >= 1, timeout=15)
        wait_until(lambda: not any(c == "v4_trades" for _, c, _ in emu.subscriptions()), timeout=15)
        assert sub.state is SubscriptionState.UNSUBSCRIBED


def test_unknown_subaccount_is_active_and_empty(emulator: IndexerEmulator) -> None:
    """A valid address nobody uses: the server answers ``subscribed`` with ``contents: {}``."""
    got = threading.Event()
    with make_client(emulator, check_interval=None) as client:
        client.start()
        sub = client.subscribe_subaccount(
            "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4", 0, lambda m: got.set()
        )
        assert sub.wait_subscribed(10)
        assert got.wait(10)
        view = client.subaccount("dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4", 0)
        assert not view.open_orders and not view.view().positions


def _idle_events(client: Any) -> List[Any]:
    events: List[Any] = []
    client.on("resync", events.append)
    return events


def test_silent_block_height_is_resubscribed(make_emu: Callable[..., IndexerEmulator]) -> None:
    emu = make_emu()
    with make_client(
        emu, check_interval=None, idle_limits={"v4_block_height": (None, 1.0)}
    ) as client:
        events = _idle_events(client)
        client.start()
        heights: List[int] = []
        sub = client.subscribe_block_height(lambda m: heights.append(m.height))
        assert sub.wait_subscribed(10)
        wait_until(lambda: len(heights) >= 5)
        assert emu.stop_publishing("v4_block_height") == 1
        wait_until(lambda: client.stats()["idle_resyncs"] >= 1, timeout=15)
        wait_until(lambda: any(e.channel == "v4_block_height" for e in events), timeout=5)
        event = next(e for e in events if e.channel == "v4_block_height")
        assert event.reason.startswith("idle") and event.id == "v4_block_height"
        assert client.stats()["resyncs"] >= 1
        seen = len(heights)
        wait_until(lambda: len(heights) >= seen + 5, timeout=15)  # streaming again
        assert client.connected and client.stats()["reconnects"] == 0


def test_silent_book_is_judged_by_blocks_and_resubscribed(
    make_emu: Callable[..., IndexerEmulator],
) -> None:
    emu = make_emu()
    limits = {"v4_orderbook": (20, None), "v4_block_height": (None, 30.0)}
    with make_client(emu, check_interval=None, idle_limits=limits) as client:
        events = _idle_events(client)
        client.start()
        clock = client.subscribe_block_height()
        btc = client.subscribe_orderbook("BTC-USD")
        eth = client.subscribe_orderbook("ETH-USD")
        for sub in (clock, btc, eth):
            assert sub.wait_subscribed(10)
        snapshots = client.stats()["subscriptions"]
        assert emu.stop_publishing("v4_orderbook", "BTC-USD") == 1
        wait_until(lambda: any(e.id == "BTC-USD" for e in events), timeout=20)
        event = next(e for e in events if e.id == "BTC-USD")
        assert event.channel == "v4_orderbook"
        assert event.reason.startswith("idle: no message for ") and event.reason.endswith("blocks")
        assert not any(e.id == "ETH-USD" for e in events)  # the moving book is left alone
        wait_until(lambda: not client.order_book("BTC-USD").stale, timeout=10)
        assert (
            client.stats()["subscriptions"]["v4_orderbook/BTC-USD"]["messages"]
            > (snapshots["v4_orderbook/BTC-USD"]["messages"])
        )


def test_paused_chain_does_not_resubscribe_books(make_emu: Callable[..., IndexerEmulator]) -> None:
    """No blocks, no book updates: judged against block progress, a book is not idle."""
    emu = make_emu()
    limits = {"v4_orderbook": (5, None), "v4_block_height": (None, 30.0)}
    with make_client(emu, check_interval=None, idle_limits=limits) as client:
        client.start()
        clock = client.subscribe_block_height()
        book = client.subscribe_orderbook("BTC-USD")
        assert clock.wait_subscribed(10) and book.wait_subscribed(10)
        emu.pause()
        quiet = threading.Event()
        assert not quiet.wait(2.0)  # an observation window: 40 block times without blocks
        assert client.stats()["idle_resyncs"] == 0


def _rest_client(emu: IndexerEmulator, **kwargs: Any) -> DydxWebSocketClient:
    return DydxWebSocketClient(
        network=emu.network, reconnect=FAST_RECONNECT, workers=2, idle_limits=None, **kwargs
    )


def test_drift_checks_of_many_subaccounts_stay_within_the_route_limit(
    make_emu: Callable[..., IndexerEmulator],
) -> None:
    emu = make_emu(route_rate_limits={"/v4/orders": (10, 10.0)})
    with _rest_client(
        emu, check_interval=0.3, confirm_delay=0.05, rest_route_limits={"/v4/orders": (10, 10.0)}
    ) as client:
        client.start()
        subs = [client.subscribe_subaccount(emu.demo_address, n) for n in range(8)]
        for sub in subs:
            assert sub.wait_subscribed(10)
        wait_until(lambda: client.stats()["drift_deferred"] >= 1, timeout=30)
        stats = client.stats()
        assert stats["drift_last_deferred"].startswith("v4_subaccounts ")
        assert stats["rest_limits"]["deferred"] >= 1
        assert stats["rest_limits"]["throttled"] == 0  # the server never had to say 429


def test_drift_checks_honour_429_retry_after(make_emu: Callable[..., IndexerEmulator]) -> None:
    emu = make_emu(route_rate_limits={"/v4/orders": (2, 10.0)})  # tighter than the client knows
    with _rest_client(emu, check_interval=0.3, confirm_delay=0.05) as client:
        client.start()
        subs = [client.subscribe_subaccount(emu.demo_address, n) for n in range(4)]
        for sub in subs:
            assert sub.wait_subscribed(10)
        wait_until(lambda: client.stats()["rest_limits"]["throttled"] >= 1, timeout=30)
        wait_until(lambda: client.stats()["drift_deferred"] >= 2, timeout=30)
        # Retry-After (~10 s) blocks the route: later checks are deferred without being sent
        assert client.stats()["rest_limits"]["throttled"] == 1


def test_reconnect_does_not_wait_for_the_server_to_drop_tcp(
    make_emu: Callable[..., IndexerEmulator],
) -> None:
    """After a close frame the real server may keep TCP open (up to 30 s) until the client
    answers: the client reconnects at once, whatever the server does with TCP."""
    emu = make_emu(close_timeout=30.0)  # the emulator waits up to 30 s for our answer
    reconnected = threading.Event()
    with make_client(emu, check_interval=None) as client:
        client.on("reconnected", lambda e: reconnected.set())
        client.start()
        assert client.subscribe_block_height().wait_subscribed(10)
        started = time.monotonic()
        assert emu.drop_connections(code=1011, reason="Heartbeat timeout") == 1
        assert reconnected.wait(15)
        assert time.monotonic() - started < 5.0
        assert client.stats()["reconnects"] == 1
