"""DydxWebSocketClient against the emulator over real loopback sockets: channels, ordering,
errors, callbacks, lifecycle. (Reconnect/chaos, overflow and TLS live in their own modules.)"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from dydx_ws import (
    BlockHeightMessage,
    CandleResolution,
    CandlesMessage,
    ErrorEvent,
    MarketsMessage,
    OrderbookMessage,
    ParentSubaccountMessage,
    SubaccountMessage,
    SubscriptionError,
    SubscriptionState,
    TradesMessage,
)
from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import Recorder, make_client, sdk_threads, subscribe_all
from tests.helpers.waiting import fd_count, wait_until

ALL_TYPES = {
    "v4_trades": TradesMessage,
    "v4_orderbook": OrderbookMessage,
    "v4_candles": CandlesMessage,
    "v4_markets": MarketsMessage,
    "v4_subaccounts": SubaccountMessage,
    "v4_parent_subaccounts": ParentSubaccountMessage,
    "v4_block_height": BlockHeightMessage,
}


@pytest.mark.parametrize("fast_frames", [True, False])  # False: every frame, general parser
def test_all_seven_channels_end_to_end(emulator: IndexerEmulator, fast_frames: bool) -> None:
    rec = Recorder()
    with make_client(emulator, fast_frames=fast_frames) as client:
        subs = subscribe_all(client, emulator, rec)  # after start(), before connected
        for sub in subs:
            assert sub.wait_subscribed(10), sub
            assert sub.state is SubscriptionState.ACTIVE
        # every channel: one snapshot first, then typed updates
        for sub in subs:
            rec.wait(lambda s=sub: rec.count(s.key, snapshots=False) >= 1, timeout=15)
            msgs = rec.messages[sub.key]
            assert msgs[0].is_snapshot and msgs[0].type == "subscribed"
            assert sum(m.is_snapshot for m in msgs) == 1
            assert all(isinstance(m, ALL_TYPES[sub.channel]) for m in msgs)
        # local state is populated
        book = client.order_book("BTC-USD")
        assert book.best_bid is not None and book.best_ask is not None
        assert book.best_bid.price < book.best_ask.price and not book.stale
        book_msgs = [m for m in rec.messages[("v4_orderbook", "BTC-USD")]]
        assert all(m.book is book for m in book_msgs)
        assert "book" not in book_msgs[-1].to_dict()  # local state is not part of the message
        assert set(client.markets) == {"BTC-USD", "ETH-USD"}
        assert isinstance(client.markets["BTC-USD"].oracle_price, Decimal)
        account = client.subaccount(emulator.demo_address, 0)
        assert account.has_snapshot and account.equity is not None
        parent = client.parent_subaccount(emulator.demo_address, 0)
        assert parent.has_snapshot
        stats = client.stats()
        assert stats["decode_errors"] == 0 and stats["server_errors"] == 0
        assert all(stats["messages_per_channel"][ch] > 0 for ch in ALL_TYPES)
        assert len(stats["subscriptions"]) == 7
    assert sdk_threads() == []


def test_per_subscription_wire_order_and_parallel_workers(emulator: IndexerEmulator) -> None:
    rec = Recorder()
    with make_client(emulator, workers=2) as client:
        subs = [client.subscribe_orderbook(t, rec) for t in ("BTC-USD", "ETH-USD")]
        for sub in subs:
            sub.wait_subscribed(10)
        rec.wait(lambda: all(rec.count(s.key) >= 30 for s in subs), timeout=20)
        for sub in subs:
            ids = [m.message_id for m in rec.messages[sub.key]]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)  # wire order, no duplicate
            assert len(rec.threads[sub.key]) == 1  # one worker per subscription
        assert rec.threads[subs[0].key] != rec.threads[subs[1].key]  # spread over workers


def test_invalid_input_raises_value_error_before_anything_is_sent(
    emulator: IndexerEmulator,
) -> None:
    with make_client(emulator) as client:
        client.wait_connected(10)
        bad = [
            lambda: client.subscribe_trades("btc usd"),
            lambda: client.subscribe_orderbook(""),
            lambda: client.subscribe_candles("BTC-USD", "2MINS"),
            lambda: client.subscribe_subaccount("dydx1invalidchecksum000000000000000000000", 0),
            lambda: client.subscribe_subaccount(emulator.demo_address, 128000),
            lambda: client.subscribe_parent_subaccount(emulator.demo_address, 128),
            lambda: client.subscribe_subaccount(emulator.demo_address, -1),
        ]
        for call in bad:
            with pytest.raises(ValueError):
                call()
        assert client.subscriptions() == []
        assert emulator.subscriptions() == []


def test_server_refusal_fails_the_subscription_with_the_server_text(
    emulator: IndexerEmulator,
) -> None:
    errors: list = []  # type: ignore[type-arg]
    with make_client(emulator) as client:
        client.on("error", errors.append)
        sub = client.subscribe_trades("DOGE-USD")  # well-formed, unknown to this server
        with pytest.raises(SubscriptionError) as info:
            sub.wait_subscribed(10)
        assert "Invalid subscription id for channel: (v4_trades-DOGE-USD)" in str(info.value)
        assert info.value.server_message.startswith("Invalid subscription id")
        assert sub.state is SubscriptionState.FAILED and sub.error is info.value
        wait_until(lambda: any(e.kind == "subscription" for e in errors))
        # the connection and other subscriptions are unaffected
        ok = client.subscribe_trades("BTC-USD")
        assert ok.wait_subscribed(10)


def test_internal_fetch_error_is_retried(emulator: IndexerEmulator) -> None:
    errors: list = []  # type: ignore[type-arg]
    with make_client(emulator) as client:
        client.on("error", errors.append)
        client.wait_connected(10)
        emulator.fail_subscriptions(count=1, status=500)
        sub = client.subscribe_orderbook("ETH-USD")
        assert sub.wait_subscribed(10)  # retried after about a second
        assert any(
            e.kind == "server" and e.message.startswith("Internal error, could not fetch data")
            for e in errors
        )


def test_raising_callback_is_isolated_and_reported(emulator: IndexerEmulator) -> None:
    errors: list = []  # type: ignore[type-arg]
    calls = []
    good = Recorder()

    def bad(msg: object) -> None:
        calls.append(msg)
        raise RuntimeError("user bug")

    with make_client(emulator, workers=1) as client:
        client.on("error", errors.append)
        client.subscribe_trades("BTC-USD", bad)
        client.subscribe_trades("BTC-USD", good)  # same topic, second handle
        client.subscribe_block_height(good)
        good.wait(lambda: good.count(("v4_block_height", "v4_block_height")) >= 5, 15)
        wait_until(lambda: len(calls) >= 3, 15)
        stats = client.stats()
        assert stats["callback_errors"] >= 3
        assert stats["connected"] and stats["reconnects"] == 0
        assert good.count(("v4_trades", "BTC-USD")) >= len(calls) - 1
        callback_errors = [e for e in errors if e.kind == "callback"]
        assert callback_errors and isinstance(callback_errors[0].exception, RuntimeError)
        assert isinstance(callback_errors[0], ErrorEvent)


def test_callbacks_may_subscribe_unsubscribe_and_stop(emulator: IndexerEmulator) -> None:
    done = threading.Event()
    client = make_client(emulator)
    state: dict = {}  # type: ignore[type-arg]

    def on_height(msg: BlockHeightMessage) -> None:
        if "trades" not in state:
            state["trades"] = client.subscribe_trades("ETH-USD", on_trade)
        elif state.get("trade_seen") and "stopped" not in state:
            state["trades"].unsubscribe()
            state["stopped"] = client.stop(timeout=5)
            done.set()

    def on_trade(msg: TradesMessage) -> None:
        state["trade_seen"] = True

    client.start()
    client.subscribe_block_height(on_height)
    assert done.wait(20)
    assert client.stop(timeout=5)
    wait_until(lambda: sdk_threads() == [], timeout=5)


def test_subscribe_and_unsubscribe_from_many_threads(emulator: IndexerEmulator) -> None:
    tickers = ["BTC-USD", "ETH-USD"]
    with make_client(emulator) as client:
        client.wait_connected(10)
        barrier = threading.Barrier(8)

        def churn(i: int) -> None:
            barrier.wait(5)
            for n in range(25):
                ticker = tickers[(i + n) % 2]
                sub = (client.subscribe_trades if n % 3 else client.subscribe_orderbook)(ticker)
                if (i + n) % 4:
                    sub.unsubscribe()

        threads = [threading.Thread(target=churn, args=(i,), name=f"churn-{i}") for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        live = {s.key for s in client.subscriptions()}
        for sub in client.subscriptions():
            assert sub.wait_subscribed(15)
        conn = client.stats()["connection_id"]

        def server_view() -> set:  # type: ignore[type-arg]
            return {(ch, i) for c, ch, i in emulator.subscriptions() if c == conn}

        wait_until(lambda: server_view() == live, timeout=15)
        # on the first connection: the churn never tripped the server's subscribe rate limit
        assert client.stats()["reconnects"] == 0
        # and exactly once each on the server
        rows = [(ch, i) for c, ch, i in emulator.subscriptions() if c == conn]
        assert len(rows) == len(set(rows))


def test_unsubscribe_stops_delivery_and_ends_the_server_subscription(
    emulator: IndexerEmulator,
) -> None:
    rec = Recorder()
    with make_client(emulator) as client:
        sub = client.subscribe_block_height(rec)
        rec.wait(lambda: rec.count() >= 3, 10)
        sub.unsubscribe()
        sub.unsubscribe()  # idempotent
        assert sub.state is SubscriptionState.UNSUBSCRIBED
        wait_until(lambda: emulator.subscriptions() == [], timeout=10)
        seen = rec.count()
        emulator.advance(5)
        emulator.flush()
        assert rec.count() <= seen + 1  # at most one frame was already in flight


def test_start_stop_cycles_leave_no_thread_or_socket(emulator: IndexerEmulator) -> None:
    before_fds = fd_count()
    for i in range(200):
        client = make_client(emulator, workers=1)
        client.start()
        if i % 20 == 0:
            assert client.wait_connected(10)
            client.subscribe_block_height().wait_subscribed(10)
        assert client.stop(timeout=5)
        assert client.stop(timeout=5)  # idempotent
    assert sdk_threads() == []
    wait_until(lambda: fd_count() <= before_fds + 2, timeout=5)
    wait_until(lambda: emulator.connection_count() == 0, timeout=10)


def test_stop_is_bounded_when_the_server_is_stalled(emulator: IndexerEmulator) -> None:
    client = make_client(emulator, ping_interval=0)
    client.start()
    client.subscribe_orderbook("BTC-USD").wait_subscribed(10)
    emulator.stall(30)
    try:
        import time

        t0 = time.monotonic()
        assert client.stop(timeout=3)
        assert time.monotonic() - t0 < 3.5
    finally:
        emulator.unstall()
    assert sdk_threads() == []


def test_subscribing_before_start_is_sent_once_connected(emulator: IndexerEmulator) -> None:
    rec = Recorder()
    client = make_client(emulator)
    sub = client.subscribe_markets(rec)
    assert sub.state is SubscriptionState.PENDING
    with client:
        assert sub.wait_subscribed(10)
        rec.wait(lambda: rec.count(snapshots=True) == 1, 10)


def test_run_forever_returns_after_stop_from_another_thread(emulator: IndexerEmulator) -> None:
    client = make_client(emulator)
    timer = threading.Timer(0.5, client.stop)
    timer.start()
    client.run_forever()
    timer.join()
    assert sdk_threads() == []


def test_sixty_subscriptions_are_restored_without_tripping_rate_limits(
    emulator: IndexerEmulator,
) -> None:
    errors: list = []  # type: ignore[type-arg]
    closes: list = []  # type: ignore[type-arg]
    with make_client(emulator) as client:
        client.on("error", errors.append)
        client.on("disconnected", closes.append)
        subs = [client.subscribe_markets(), client.subscribe_block_height()]
        for ticker in ("BTC-USD", "ETH-USD"):
            subs += [client.subscribe_trades(ticker), client.subscribe_orderbook(ticker)]
            subs += [client.subscribe_candles(ticker, r) for r in CandleResolution]
        subs += [
            client.subscribe_subaccount(emulator.demo_address, n) for n in range(60 - len(subs))
        ]
        assert len(subs) == 60
        for sub in subs:
            assert sub.wait_subscribed(20)
        for _ in range(2):
            before = client.stats()["reconnects"]
            emulator.drop_connections(code=1012)
            wait_until(lambda b=before: client.stats()["reconnects"] > b, 10)
            for sub in subs:
                assert sub.wait_subscribed(20)
        # one topic churned fast: its subscribes are paced to the server's 2 per second
        next(s for s in subs if s.key == ("v4_trades", "ETH-USD")).unsubscribe()
        for _ in range(5):
            churned = client.subscribe_trades("ETH-USD")
            assert churned.wait_subscribed(10)
            churned.unsubscribe()
    assert not [e for e in errors if "Too many" in e.message or "limit" in e.message]
    assert all(c.code != 1008 for c in closes)  # never closed for a rate limit


def test_start_stop_cycles_do_not_retain_memory(emulator: IndexerEmulator) -> None:
    """UBWA #205/#273: memory grew as streams were created and stopped."""
    import gc
    import tracemalloc

    def cycle() -> None:
        client = make_client(emulator, workers=1, check_interval=None)
        client.start()
        client.subscribe_orderbook("BTC-USD").wait_subscribed(10)
        assert client.stop(5)

    for _ in range(10):  # warm-up: generated decoders, caches, imports
        cycle()
    sdk_only = [
        tracemalloc.Filter(True, "*/dydx_ws/*"),
        tracemalloc.Filter(False, "*/dydx_ws/emulator/*"),
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(sdk_only)
        for _ in range(50):
            cycle()
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(sdk_only)
    finally:
        tracemalloc.stop()
    growth = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert growth < 32 * 1024, f"the SDK kept {growth} bytes after 50 client lifetimes"


def test_wait_subscribed_returns_once_the_snapshot_is_in_local_state(
    emulator: IndexerEmulator,
) -> None:
    gate = threading.Event()
    with make_client(emulator, workers=1) as client:
        # a callback blocking on the snapshot does not hold wait_subscribed() back
        book_sub = client.subscribe_orderbook("BTC-USD", lambda m: gate.wait(10))
        try:
            assert book_sub.wait_subscribed(10)
            assert len(client.order_book("BTC-USD")) > 0  # readable at once, no polling
            assert not gate.is_set()  # ...while the callback is still blocked
        finally:
            gate.set()
        markets_sub = client.subscribe_markets()
        account_sub = client.subscribe_subaccount(emulator.demo_address, 0)
        assert markets_sub.wait_subscribed(10)
        assert set(client.markets) == {"BTC-USD", "ETH-USD"}
        assert account_sub.wait_subscribed(10)
        assert client.subaccount(emulator.demo_address, 0).has_snapshot
