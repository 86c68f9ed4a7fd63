"""The connection pool against the emulator over real sockets: subscriptions past the server's
per-connection limits, independent reconnects, shrinking and growing, the cap, a server limit
lower than the client's, and ``ALL_MARKETS`` following listings (engine/_pool.py,
engine/_groups.py)."""

from __future__ import annotations

import math
import threading
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

from dydx_ws import (
    ALL_MARKETS,
    DisconnectedEvent,
    DydxWebSocketClient,
    ErrorEvent,
    GroupEvent,
    ReconnectedEvent,
    SubscriptionError,
    SubscriptionGroup,
    SubscriptionState,
)
from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import FAST_EMULATOR, FAST_RECONNECT, sdk_threads
from tests.helpers.waiting import wait_until

TIMEOUT = 60.0
LIMITS = {"v4_orderbook": 2, "v4_trades": 2, "v4_candles": 2}
Key = Tuple[str, Any]


def pool_client(emu: IndexerEmulator, **kwargs: Any) -> DydxWebSocketClient:
    settings: Dict[str, Any] = dict(
        url=emu.ws_url,
        reconnect=FAST_RECONNECT,
        check_interval=None,
        idle_limits=None,
        subscription_limits=LIMITS,
    )
    settings.update(kwargs)
    return DydxWebSocketClient(**settings)


class Events:
    def __init__(self, client: DydxWebSocketClient) -> None:
        self.lock = threading.Lock()
        self.log: Dict[str, List[Any]] = {}
        for name in ("connected", "disconnected", "reconnected", "error", "group"):
            client.on(name, lambda e, name=name: self._add(name, e))

    def _add(self, name: str, event: Any) -> None:
        with self.lock:
            self.log.setdefault(name, []).append(event)

    def of(self, name: str) -> List[Any]:
        with self.lock:
            return list(self.log.get(name, []))


def server_view(emu: IndexerEmulator) -> Dict[str, Set[Key]]:
    view: Dict[str, Set[Key]] = {}
    for conn, channel, sub_id in emu.subscriptions():
        view.setdefault(conn, set()).add((channel, sub_id))
    return view


def rate_limited(events: Events) -> List[Any]:
    return [
        e
        for e in events.of("error")
        if isinstance(e, ErrorEvent) and "Too many subscribe attempts" in e.message
    ]


@pytest.fixture
def emu() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=10, seed=3, channel_limits=LIMITS, **FAST_EMULATOR) as e:
        yield e


def subscribe_all(client: DydxWebSocketClient) -> List[SubscriptionGroup]:
    """Every market's book, trades and 1MIN candles, each group confirmed."""
    groups = [
        client.subscribe_orderbook(ALL_MARKETS),
        client.subscribe_trades(ALL_MARKETS),
        client.subscribe_candles(ALL_MARKETS, "1MIN"),
    ]
    for group in groups:
        assert group.wait_subscribed(TIMEOUT)
    return groups


def test_small_limits_spread_every_market_over_as_many_connections_as_needed(
    emu: IndexerEmulator,
) -> None:
    with pool_client(emu) as client:
        events = Events(client)
        groups = subscribe_all(client)
        assert all(sorted(g.tickers) == sorted(emu.markets) for g in groups)
        # 10 markets, 2 per channel per connection: 5 connections (+ markets on the first)
        connections = client.stats()["connections"]
        assert len(connections) == math.ceil(10 / 2)
        assert all(c["state"] == "connected" for c in connections)
        # every server connection holds exactly what the client placed on it
        view = server_view(emu)
        placed = {c["id"]: c["subscriptions"] for c in connections}
        for conn_id, keys in view.items():
            per_channel: Dict[str, int] = {}
            for channel, _ in keys:
                per_channel[channel] = per_channel.get(channel, 0) + 1
            assert per_channel == placed[conn_id]
        # data from every market of every channel
        wait_until(
            lambda: all(
                s.messages_received >= 2 for g in groups for s in g if s.channel != "v4_candles"
            ),
            timeout=TIMEOUT,
        )
        assert not rate_limited(events)
        assert emu.stats()["handshakes_rejected"] == 0
        threads = sdk_threads()
        io = [t for t in threads if t.startswith("dydx-ws-io")]
        assert len(io) == len(connections)
        assert len(threads) <= len(connections) + 4 + 1  # I/O threads, workers, drift


def test_a_dropped_connection_restores_only_its_own_subscriptions(emu: IndexerEmulator) -> None:
    with pool_client(emu) as client:
        events = Events(client)
        groups = subscribe_all(client)
        victim = client.stats()["connections"][2]
        others = [c["index"] for c in client.stats()["connections"] if c["index"] != 2]
        frames_before = {c["index"]: c["frames"] for c in client.stats()["connections"]}
        assert emu.drop_connections(1011, "test", connection_id=victim["id"]) == 1
        wait_until(lambda: events.of("reconnected"), timeout=TIMEOUT)
        (restored,) = events.of("reconnected")
        assert isinstance(restored, ReconnectedEvent) and restored.connection == 2
        mine = {s.key for g in groups for s in g if s.connection == 2}  # what was placed on it
        assert set(restored.restored) == mine and restored.failed == []
        drops = [e for e in events.of("disconnected") if isinstance(e, DisconnectedEvent)]
        assert [d.connection for d in drops] == [2]
        # the others kept streaming and never went back to pending
        for group in groups:
            assert group.wait_subscribed(TIMEOUT)
        wait_until(
            lambda: all(
                c["frames"] > frames_before[c["index"]]
                for c in client.stats()["connections"]
                if c["index"] in others
            ),
            timeout=TIMEOUT,
        )
        assert [c["reconnects"] for c in client.stats()["connections"]] == [0, 0, 1, 0, 0]


def test_every_connection_dropped_at_once_is_restored_without_a_rate_limit_or_429(
    emu: IndexerEmulator,
) -> None:
    with pool_client(emu) as client:
        events = Events(client)
        groups = subscribe_all(client)
        before = client.stats()["connections"]
        assert emu.drop_connections(1011, "all at once") == len(before)
        wait_until(lambda: len(events.of("reconnected")) == len(before), timeout=TIMEOUT)
        assert sorted(e.connection for e in events.of("reconnected")) == [
            c["index"] for c in before
        ]
        assert all(not e.failed for e in events.of("reconnected"))
        for group in groups:
            assert group.wait_subscribed(TIMEOUT)
        wait_until(lambda: sum(len(v) for v in server_view(emu).values()) == 31, timeout=TIMEOUT)
        assert not rate_limited(events)
        assert emu.stats()["handshakes_rejected"] == 0


def test_unsubscribing_most_shrinks_the_pool_and_subscribing_grows_it(
    emu: IndexerEmulator,
) -> None:
    with pool_client(emu, connection_grace=0.2) as client:
        books = client.subscribe_orderbook(ALL_MARKETS)
        assert books.wait_subscribed(TIMEOUT)
        assert len(client.stats()["connections"]) == 5
        keep = ["BTC-USD"]
        for ticker, member in books.members.items():
            if ticker not in keep:
                member.unsubscribe()
        # emptied connections close after the grace period; what is left needs one or two
        wait_until(lambda: len(client.stats()["connections"]) <= 2, timeout=TIMEOUT)
        wait_until(lambda: emu.connection_count() == len(client.stats()["connections"]), 30)
        assert client.stats()["connections_closed"] >= 3
        assert client.order_book("BTC-USD").stale is False
        again = client.subscribe_trades(list(emu.markets))
        assert again.wait_subscribed(TIMEOUT)
        assert len(client.stats()["connections"]) >= 5
        books.unsubscribe()
        again.unsubscribe()


def test_the_cap_raises_and_a_lower_server_limit_moves_the_subscription() -> None:
    # the server admits 2 trades per connection; the client believes the default 32
    with (
        IndexerEmulator(markets=6, seed=3, channel_limits={"v4_trades": 2}, **FAST_EMULATOR) as emu,
        pool_client(emu, subscription_limits=None) as client,
    ):
        events = Events(client)
        group = client.subscribe_trades(list(emu.markets))
        assert group.wait_subscribed(TIMEOUT)
        assert all(s.state is SubscriptionState.ACTIVE for s in group)
        assert client.stats()["subscription_moves"] >= 4
        counts = [c["subscriptions"].get("v4_trades", 0) for c in client.stats()["connections"]]
        assert counts == [2, 2, 2]
        assert not [e for e in events.of("error") if e.kind == "subscription"]
    with (
        IndexerEmulator(markets=6, seed=3, **FAST_EMULATOR) as emu,
        pool_client(emu, max_connections=2) as client,
    ):
        client.subscribe_trades(list(emu.markets)[:4])
        with pytest.raises(SubscriptionError, match="max_connections=2"):
            client.subscribe_trades(list(emu.markets)[4])
        with pytest.raises(SubscriptionError, match="max_connections=2"):
            client.subscribe_trades(list(emu.markets)[4:])  # a list: none of it is kept
        assert len(client.subscriptions()) == 4


def test_all_markets_follows_listings_and_delistings(emu: IndexerEmulator) -> None:
    with pool_client(emu) as client:
        events = Events(client)
        books = client.subscribe_orderbook(ALL_MARKETS)
        assert books.wait_subscribed(TIMEOUT)
        assert books.follows_markets and len(books) == 10
        assert events.of("group") == []  # the initial membership is not a listing
        emu.list_market("NEWCOIN-USD")
        wait_until(lambda: "NEWCOIN-USD" in books, timeout=TIMEOUT)
        assert books["NEWCOIN-USD"].wait_subscribed(TIMEOUT)
        assert client.order_book("NEWCOIN-USD").stale is False
        gone = emu.markets[3]
        emu.delist_market(gone)
        wait_until(lambda: gone not in books, timeout=TIMEOUT)
        wait_until(
            lambda: ("v4_orderbook", gone) not in set().union(*server_view(emu).values()),
            timeout=TIMEOUT,
        )
        joined = [(e.ticker, e.joined, e.reason) for e in events.of("group")]
        assert joined == [
            ("NEWCOIN-USD", True, "listed"),
            (gone, False, "status FINAL_SETTLEMENT"),
        ]
        assert all(isinstance(e, GroupEvent) for e in events.of("group"))
        books.unsubscribe()
        wait_until(lambda: not emu.subscriptions(), timeout=TIMEOUT)


def test_a_market_refused_while_the_server_has_not_seen_its_listing_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dydx_ws.engine._groups as groups

    monkeypatch.setattr(groups, "RETRY_INTERVAL", 0.5)
    with IndexerEmulator(markets=3, seed=3, listing_delay=1.0, **FAST_EMULATOR) as emu:
        with pool_client(emu, subscription_limits=None) as client:
            events = Events(client)
            trades = client.subscribe_trades(ALL_MARKETS)
            assert trades.wait_subscribed(TIMEOUT)
            emu.list_market("LATE-USD")
            wait_until(lambda: "LATE-USD" in trades, timeout=TIMEOUT)
            wait_until(lambda: "LATE-USD" in trades.failed, timeout=TIMEOUT)
            with pytest.raises(SubscriptionError, match="LATE-USD"):
                trades.wait_subscribed(TIMEOUT)
            wait_until(lambda: trades.states.get("LATE-USD") is SubscriptionState.ACTIVE, 30)
            assert trades.wait_subscribed(TIMEOUT)
            reasons = [e.reason for e in events.of("group") if e.ticker == "LATE-USD"]
            assert reasons[0] == "listed" and "retried" in reasons


def test_three_hundred_markets_in_three_channels_in_one_client() -> None:
    # mainnet-sized: 900 subscriptions at the server's real limits (32 per channel)
    settings = dict(FAST_EMULATOR, block_time=0.1)
    with IndexerEmulator(markets=300, seed=5, **settings) as emu:
        with pool_client(emu, subscription_limits=None) as client:
            events = Events(client)
            groups = subscribe_all(client)
            assert [len(g) for g in groups] == [300, 300, 300]
            assert all(s.state is SubscriptionState.ACTIVE for g in groups for s in g)
            connections = client.stats()["connections"]
            assert len(connections) == math.ceil(300 / 32)
            assert sum(len(v) for v in server_view(emu).values()) == 901  # + markets
            wait_until(
                lambda: all(s.messages_received >= 2 for g in groups[:2] for s in g),
                timeout=TIMEOUT,
            )
            assert not rate_limited(events)
            assert emu.stats()["handshakes_rejected"] == 0
            assert len(sdk_threads()) <= len(connections) + 4 + 1
