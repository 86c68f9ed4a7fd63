"""Local state is never silently wrong against a hostile server (real loopback sockets, public
API): an undecodable snapshot is retried and then failed, an undecodable update of a stateful
channel resyncs at once, odd numbers are refused, an uncross is counted and reported, and frames
nobody asked for are reported."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from dydx_ws import DecodeError, DydxWebSocketClient, ReconnectPolicy, SubscriptionError
from dydx_ws.engine._subscriptions import SubscriptionState
from dydx_ws.events import ErrorEvent
from tests.helpers.fault_server import FaultServer, RawConn, channel_data, serve_indexer, subscribed
from tests.helpers.waiting import wait_until

FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "frames"
TIMEOUT = 20.0

BOOK_1 = {
    "bids": [{"price": "100", "size": "1"}, {"price": "99", "size": "2"}],
    "asks": [{"price": "101", "size": "1"}, {"price": "102", "size": "4"}],
}
BOOK_2 = {
    "bids": [{"price": "98", "size": "7"}],
    "asks": [{"price": "103", "size": "5"}, {"price": "104", "size": "6"}],
}
BOOK_3 = {"bids": [{"price": "97", "size": "1"}], "asks": [{"price": "105", "size": "1"}]}


class Indexer:
    """A scripted Indexer: the n-th subscribe (1-based, any topic) is answered by
    ``plan(indexer, conn, msg, n)``; ``release`` lets a test hold an answer back."""

    def __init__(
        self,
        plan: Callable[[Indexer, RawConn, Dict[str, Any], int], None],
        on_unsubscribe: Optional[Callable[[Indexer, RawConn, Dict[str, Any]], None]] = None,
    ) -> None:
        self.plan = plan
        self.on_unsubscribe = on_unsubscribe
        self.received: List[Dict[str, Any]] = []
        self.release = threading.Event()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)

    def script(self, conn: RawConn) -> None:
        conn.handshake()
        serve_indexer(conn, self._respond)

    def _respond(self, conn: RawConn, msg: Dict[str, Any]) -> None:
        with self._cond:
            self.received.append(msg)
            n = sum(1 for m in self.received if m.get("type") == "subscribe")
            self._cond.notify_all()
        if msg.get("type") == "subscribe":
            self.plan(self, conn, msg, n)
        elif self.on_unsubscribe is not None:
            self.on_unsubscribe(self, conn, msg)

    def subscribes(self) -> int:
        with self._cond:
            return sum(1 for m in self.received if m.get("type") == "subscribe")

    def wait_subscribes(self, n: int, timeout: float = TIMEOUT) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.subscribes() >= n, timeout):
                raise AssertionError(f"{self.subscribes()} subscribes within {timeout} s, not {n}")

    def hold(self) -> None:
        """Wait (on the server thread) until the test releases the next answer."""
        assert self.release.wait(TIMEOUT), "the test never released the answer"
        self.release.clear()

    def snapshot(self, conn: RawConn, msg: Dict[str, Any], contents: Any) -> None:
        conn.send_json(subscribed(msg, contents, message_id=next(self._ids)))

    def data(self, conn: RawConn, msg: Dict[str, Any], contents: Any) -> None:
        sid = msg.get("id")
        if msg["channel"] == "v4_markets":
            sid = None
        conn.send_json(channel_data(msg["channel"], sid, contents, message_id=next(self._ids)))


def make_client(url: str) -> DydxWebSocketClient:
    return DydxWebSocketClient(
        url=url, reconnect=ReconnectPolicy(initial_delay=0.05), check_interval=None
    )


@pytest.fixture
def errors() -> List[ErrorEvent]:
    return []


def kinds(events: List[ErrorEvent]) -> List[str]:
    return [e.kind for e in list(events)]


def levels(side: List[Any]) -> List[tuple]:  # type: ignore[type-arg]
    return [(lv.price, lv.size) for lv in side]


def as_levels(side: List[Dict[str, str]]) -> List[tuple]:  # type: ignore[type-arg]
    return [(Decimal(lv["price"]), Decimal(lv["size"])) for lv in side]


def bad_book(value: str) -> Dict[str, Any]:
    contents = copy.deepcopy(BOOK_1)
    contents["asks"][1]["size"] = value
    return contents


# -- 1. a `subscribed` that fails to decode ----------------------------------------------------
def test_an_undecodable_snapshot_is_retried_and_no_delta_touches_the_empty_book(
    errors: List[ErrorEvent],
) -> None:
    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        if n == 1:
            ix.snapshot(conn, msg, bad_book("NaN"))
            ix.data(conn, msg, {"bids": [["99.5", "3"]]})
            ix.data(conn, msg, {"asks": [["100.5", "3"]]})
        else:
            ix.hold()
            ix.snapshot(conn, msg, BOOK_2)

    ix = Indexer(plan)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        sub = client.subscribe_orderbook("BTC-USD")
        ix.wait_subscribes(2)  # re-subscribed on its own
        book = client.order_book("BTC-USD")
        wait_until(lambda: client.stats()["no_snapshot_drops"] == 2, TIMEOUT)
        assert book.stale
        assert len(book) == 0  # neither delta was applied to a book that has no snapshot
        assert sub.state is SubscriptionState.PENDING
        assert not sub.wait_subscribed(timeout=0.05)
        ix.release.set()
        assert sub.wait_subscribed(timeout=TIMEOUT)
        assert not book.stale
        assert levels(book.bids) == as_levels(BOOK_2["bids"])
        assert levels(book.asks) == as_levels(BOOK_2["asks"])
        stats = client.stats()
        assert stats["snapshot_retries"] == 1
        assert stats["decode_errors"] == 1
        wait_until(lambda: {"decode", "desync"} <= set(kinds(errors)), TIMEOUT)
    types = [m["type"] for m in ix.received]
    assert types == ["subscribe", "unsubscribe", "subscribe"]
    assert not server.errors


def test_a_snapshot_that_never_decodes_fails_the_subscription_with_the_decode_error(
    errors: List[ErrorEvent],
) -> None:
    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        ix.snapshot(conn, msg, bad_book("Infinity"))
        ix.data(conn, msg, {"bids": [["99.5", "3"]]})

    ix = Indexer(plan)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        sub = client.subscribe_orderbook("BTC-USD")
        with pytest.raises(SubscriptionError) as failed:
            sub.wait_subscribed(timeout=TIMEOUT)
        assert isinstance(failed.value.__cause__, DecodeError)
        assert failed.value.__cause__.field == "PriceLevel.size"
        assert "Infinity" in str(failed.value)
        assert sub.state is SubscriptionState.FAILED
        book = client.order_book("BTC-USD")
        assert book.stale and len(book) == 0
        assert client.stats()["snapshot_retries"] == 3
        wait_until(lambda: "subscription" in kinds(errors), TIMEOUT)
        wait_until(lambda: ix.received[-1]["type"] == "unsubscribe", TIMEOUT)  # stream ended
    assert ix.subscribes() == 4  # the first attempt and 3 retries, then no more
    assert not server.errors


# -- 2. an update that fails to decode on a stateful channel -----------------------------------
@dataclass
class Stateful:
    """How to subscribe to one stateful channel, its two snapshots, a bad update, and how to read
    the local state it keeps."""

    subscribe: Callable[[DydxWebSocketClient], Any]
    first: Any
    bad_update: Any
    second: Any
    read: Callable[[DydxWebSocketClient], Any]
    expected_first: Any
    expected_second: Any
    book: Optional[str] = None


def _book_case(bad: str) -> Stateful:
    def read(client: DydxWebSocketClient) -> Any:
        book = client.order_book("BTC-USD")
        return levels(book.bids), levels(book.asks)

    return Stateful(
        subscribe=lambda c: c.subscribe_orderbook("BTC-USD"),
        first=BOOK_1,
        # valid levels, and one bad: nothing of it may be applied half
        bad_update={"bids": [["100", "5"], [bad, "1"]], "asks": [["101", "0"]]},
        second=BOOK_2,
        read=read,
        expected_first=(as_levels(BOOK_1["bids"]), as_levels(BOOK_1["asks"])),
        expected_second=(as_levels(BOOK_2["bids"]), as_levels(BOOK_2["asks"])),
        book="BTC-USD",
    )


def _markets_case() -> Stateful:
    fixture = json.loads((FRAMES / "v4_markets__subscribed__ntl-98-markets.json").read_text())
    btc = fixture["contents"]["markets"]["BTC-USD"]
    first = {"markets": {"BTC-USD": btc}}
    second = {"markets": {"BTC-USD": {**btc, "oraclePrice": "60000.5"}}}

    def read(client: DydxWebSocketClient) -> Any:
        market = client.markets.get("BTC-USD")
        return None if market is None else market.oracle_price

    return Stateful(
        subscribe=lambda c: c.subscribe_markets(),
        first=first,
        bad_update={"oraclePrices": {"BTC-USD": {"oraclePrice": "sNaN", "marketId": 0}}},
        second=second,
        read=read,
        expected_first=Decimal(btc["oraclePrice"]),
        expected_second=Decimal("60000.5"),
    )


def _subaccount_case() -> Stateful:
    name = "v4_subaccounts__subscribed__ntl-no-positions.json"
    contents = json.loads((FRAMES / name).read_text())["contents"]
    address = "dydx155va0m7wz5n8zcqscn9afswwt04n4usj46wvp5"  # a valid bech32 address
    contents["subaccount"]["address"] = address
    second = copy.deepcopy(contents)
    second["subaccount"]["assetPositions"]["USDC"]["size"] = "20.5"
    order = {**contents["orders"][0], "price": "1_000"}

    def read(client: DydxWebSocketClient) -> Any:
        held = client.subaccount(address, 0).asset_positions.get("USDC")
        return None if held is None else held.size

    return Stateful(
        subscribe=lambda c: c.subscribe_subaccount(address, 0),
        first=contents,
        bad_update={"orders": [order]},
        second=second,
        read=read,
        expected_first=Decimal("11.623325"),
        expected_second=Decimal("20.5"),
    )


CASES = {
    "book-NaN": lambda: _book_case("NaN"),
    "book-Infinity": lambda: _book_case("Infinity"),
    "book-whitespace": lambda: _book_case(" 100"),
    "markets-sNaN": _markets_case,
    "subaccount-underscore": _subaccount_case,
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[Stateful]:
    yield CASES[request.param]()


def test_an_undecodable_update_marks_stale_and_resyncs_at_once(
    case: Stateful, errors: List[ErrorEvent]
) -> None:
    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        if n == 1:
            ix.snapshot(conn, msg, case.first)
            ix.hold()
            ix.data(conn, msg, case.bad_update)
        else:
            ix.hold()
            ix.snapshot(conn, msg, case.second)

    ix = Indexer(plan)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        sub = case.subscribe(client)
        assert sub.wait_subscribed(timeout=TIMEOUT)
        assert case.read(client) == case.expected_first
        ix.release.set()  # the bad update
        ix.wait_subscribes(2)  # resynced at once (check_interval=None: no drift check)
        if case.book:
            assert client.order_book(case.book).stale
        assert case.read(client) == case.expected_first  # the bad frame is not applied half
        stats = client.stats()
        assert stats["decode_resyncs"] == 1 and stats["resyncs"] == 1
        ix.release.set()  # the fresh snapshot
        wait_until(lambda: case.read(client) == case.expected_second, TIMEOUT)
        if case.book:
            assert not client.order_book(case.book).stale
        wait_until(lambda: "desync" in kinds(errors), TIMEOUT)
        desync = next(e for e in errors if e.kind == "desync")
        assert desync.channel == sub.channel and desync.id == sub.id
        assert isinstance(desync.exception, DecodeError)
    assert [m["type"] for m in ix.received] == ["subscribe", "unsubscribe", "subscribe"]
    assert not server.errors


def test_a_second_bad_update_soon_after_a_resync_is_resynced_too(errors: List[ErrorEvent]) -> None:
    """Within the resync interval the re-subscribe is deferred, never skipped: the book that the
    first resync's snapshot refreshed must not be left wrong (and not stale) by the second."""

    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        if n == 1:
            ix.snapshot(conn, msg, BOOK_1)
            ix.data(conn, msg, {"bids": [["NaN", "1"]]})
        elif n == 2:
            ix.snapshot(conn, msg, BOOK_2)
            ix.data(conn, msg, {"asks": [["103", "Infinity"]]})
        else:
            ix.snapshot(conn, msg, BOOK_3)

    ix = Indexer(plan)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        client.subscribe_orderbook("BTC-USD")
        ix.wait_subscribes(3)
        book = client.order_book("BTC-USD")
        want = (as_levels(BOOK_3["bids"]), as_levels(BOOK_3["asks"]))
        wait_until(lambda: (levels(book.bids), levels(book.asks)) == want, TIMEOUT)
        assert not book.stale
        assert client.stats()["decode_resyncs"] == 2
    assert not server.errors


# -- 3. an uncross is counted and reported -----------------------------------------------------
def test_an_uncross_that_removes_levels_is_counted_and_reported(errors: List[ErrorEvent]) -> None:
    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        ix.snapshot(conn, msg, BOOK_1)
        ix.data(conn, msg, {"bids": [["101.5", "3"]]})  # crosses the 101 ask

    ix = Indexer(plan)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        sub = client.subscribe_orderbook("BTC-USD")
        assert sub.wait_subscribed(timeout=TIMEOUT)
        wait_until(lambda: client.stats()["uncrossed"] == 1, TIMEOUT)
        book = client.order_book("BTC-USD")
        assert book.best_ask is not None and book.best_ask.price == 102  # 101 (older) removed
        wait_until(lambda: "uncross" in kinds(errors), TIMEOUT)
        event = next(e for e in errors if e.kind == "uncross")
        assert (event.channel, event.id) == ("v4_orderbook", "BTC-USD")
    assert not server.errors


# -- 10. frames nobody asked for ---------------------------------------------------------------
def test_data_and_acks_nobody_asked_for_are_reported_rate_limited(
    errors: List[ErrorEvent],
) -> None:
    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        ix.snapshot(conn, msg, BOOK_1)
        for i in range(30):
            conn.send_json(channel_data("v4_bogus", "X", {"x": i}, message_id=next(ix._ids)))
            ix.data(conn, {"channel": "v4_trades", "id": "ETH-USD"}, {"trades": []})
        ix.snapshot(conn, {"channel": "v4_orderbook", "id": "ETH-USD"}, BOOK_2)  # unsolicited
        ix.data(conn, msg, {"bids": [["99.5", "3"]]})  # marks the end of the junk

    ix = Indexer(plan)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        client.subscribe_orderbook("BTC-USD")
        book = client.order_book("BTC-USD")
        wait_until(lambda: book.size_at("99.5", "bid") == 3, TIMEOUT)
        assert client.stats()["unrouted"] == 61
        wait_until(lambda: kinds(errors).count("unrouted") >= 2, TIMEOUT)
        unrouted = [e for e in errors if e.kind == "unrouted"]
        assert len(unrouted) <= 10  # 61 frames: at most one report per second per category
        assert any(e.channel == "v4_bogus" and "unknown channel" in e.message for e in unrouted)
        assert any(e.channel == "v4_trades" for e in unrouted)
        # the unsolicited subscription is ended on the wire
        wait_until(lambda: any(m.get("type") == "unsubscribe" for m in ix.received), TIMEOUT)
    assert not server.errors


def test_the_tail_of_an_ended_subscription_is_counted_not_reported(
    errors: List[ErrorEvent],
) -> None:
    def plan(ix: Indexer, conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        if msg["channel"] == "v4_trades":
            ix.snapshot(conn, msg, {"trades": []})
        else:
            ix.snapshot(conn, msg, BOOK_1)

    def tail(ix: Indexer, conn: RawConn, msg: Dict[str, Any]) -> None:
        ix.data(conn, msg, {"trades": []})  # was in flight when the unsubscribe arrived
        # then a frame that is reported: events run in order, so once its report is in, a
        # report of the tail would be in too
        conn.send_json(channel_data("v4_bogus", None, {}, message_id=next(ix._ids)))

    ix = Indexer(plan, on_unsubscribe=tail)
    with FaultServer(ix.script) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        trades = client.subscribe_trades("ETH-USD")
        assert trades.wait_subscribed(timeout=TIMEOUT)
        trades.unsubscribe()
        wait_until(lambda: any(m.get("type") == "unsubscribe" for m in ix.received), TIMEOUT)
        wait_until(lambda: "unrouted" in kinds(errors), TIMEOUT)
        assert client.stats()["unrouted"] == 2
        assert [e.channel for e in errors if e.kind == "unrouted"] == ["v4_bogus"]
    assert not server.errors
