"""DriftRepair's comparison logic: a difference is drift only if it persists with the same local
value across two REST views, and a repair is skipped if the stream changed the value meanwhile.

No sleeps: REST is a real client of a scripted loopback server, the worker a real pool that is
started only when a test lets the queued repair run."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import pytest

from dydx_ws import ResyncEvent
from dydx_ws.engine._drift_repair import (
    DriftRepair,
    account_diff,
    book_diff,
    confirm_drift,
    markets_diff,
)
from dydx_ws.engine._pipeline import COUNTERS
from dydx_ws.engine._subscriptions import SubscriptionRegistry
from dydx_ws.engine._worker_pool import Dispatcher
from dydx_ws.events import Counters, Emitter, EventHub
from dydx_ws.models import (
    AssetPosition,
    PerpetualMarket,
    PerpetualPosition,
    PositionSide,
    PriceLevel,
    Subaccount,
)
from dydx_ws.protocol._channels import Topic
from dydx_ws.rest import IndexerRestClient
from dydx_ws.state import SubaccountState
from dydx_ws.state._orderbook import OrderBook
from dydx_ws.state._store import LocalState

D = Decimal
ADDR = "dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art"


def levels(*pairs: Tuple[str, str]) -> List[PriceLevel]:
    return [PriceLevel(D(p), D(s)) for p, s in pairs]


def book_with(bids: List[PriceLevel], asks: List[PriceLevel]) -> OrderBook:
    book = OrderBook("BTC-USD")
    book.apply_snapshot(bids, asks, message_id=1)
    return book


# ----------------------------------------------------------------------------- confirm_drift


def test_confirm_drift_needs_the_same_local_value_twice() -> None:
    views = iter(["a", "b"])
    local = {"x": 1}

    def compare(view: str) -> Any:
        return frozenset({("x", local["x"])})

    def wait() -> bool:
        local["x"] = 2  # the stream moved the value between the two fetches
        return False

    assert confirm_drift(lambda: next(views), compare, wait) is None
    views = iter(["a", "b"])
    assert confirm_drift(lambda: next(views), compare, lambda: False) == (
        "b",
        frozenset({("x", 2)}),
    )


def test_confirm_drift_none_when_rest_catches_up_or_on_stop() -> None:
    views = iter([1, 0])
    assert (
        confirm_drift(
            lambda: next(views), lambda v: frozenset({("d",)}) if v else frozenset(), lambda: False
        )
        is None
    )
    fetched: List[int] = []
    assert (
        confirm_drift(lambda: fetched.append(1) or 1, lambda v: frozenset({("d",)}), lambda: True)
        is None
    )
    assert fetched == [1]  # stopped: no second fetch
    assert confirm_drift(lambda: 1, lambda v: frozenset(), lambda: False) is None


# ----------------------------------------------------------------------------- comparisons


def test_book_diff_keys_by_side_and_local_size() -> None:
    book = book_with(levels(("100", "1"), ("99", "2")), levels(("101", "3")))
    diff = book_diff(book, levels(("100", "1"), ("99", "5")), levels(("101", "3"), ("102", "4")))
    assert diff == {("bid", D("99"), D("2")), ("ask", D("102"), D(0))}
    book.mark_stale()
    assert book_diff(book, [], []) == frozenset()


def test_book_diff_ignores_valid_levels_below_the_rest_depth() -> None:
    # REST shows 100 levels per side; the local book has 101 but lacks one REST level.
    rest_bids = levels(*((str(1000 - i), "1") for i in range(100)))
    local_bids = [lv for lv in rest_bids if lv.price != D(995)] + levels(("900", "7"), ("899", "1"))
    book = book_with(local_bids, levels(("2000", "1")))
    diff = book_diff(book, rest_bids, levels(("2000", "1")))
    assert diff == {("bid", D(995), D(0))}  # the deeper 900/899 levels are not drift
    # A ghost level inside the window is found, and pushes nothing out.
    book = book_with(rest_bids + levels(("995.5", "3")), levels(("2000", "1")))
    assert book_diff(book, rest_bids, levels(("2000", "1"))) == {("bid", D("995.5"), D(3))}


def test_markets_diff_ignores_fields_rest_leaves_unset() -> None:
    local = {
        "BTC-USD": PerpetualMarket(ticker="BTC-USD", oracle_price=D(10), tick_size=D(1)),
        "GONE-USD": PerpetualMarket(ticker="GONE-USD"),
    }
    rest = {
        "BTC-USD": PerpetualMarket(ticker="BTC-USD", oracle_price=D(11)),
        "NEW-USD": PerpetualMarket(ticker="NEW-USD"),
    }
    assert markets_diff(local, rest) == {
        ("BTC-USD", "oracle_price", D(10)),
        ("GONE-USD", "market", True),
        ("NEW-USD", "market", False),
    }


def position(market: str, size: str, side: PositionSide) -> PerpetualPosition:
    return PerpetualPosition(market=market, size=D(size), side=side)


def usdc(size: str, side: PositionSide) -> AssetPosition:
    return AssetPosition(symbol="USDC", size=D(size), side=side, asset_id="0")


def subaccount(positions: Dict[str, PerpetualPosition], assets: Dict[str, AssetPosition]) -> Any:
    return Subaccount(
        address=ADDR,
        subaccount_number=0,
        equity=D(0),
        free_collateral=D(0),
        open_perpetual_positions=positions,
        asset_positions=assets,
    )


def test_account_diff_compares_signed_sizes() -> None:
    state = SubaccountState(ADDR, 0)
    # The stream may carry a SHORT size unsigned; REST sends it negative.
    state.replace_from_rest(
        subaccount(
            {"ETH-USD": position("ETH-USD", "0.5", PositionSide.SHORT)},
            {"USDC": usdc("100", PositionSide.SHORT)},
        ),
        [],
    )
    same = subaccount(
        {"ETH-USD": position("ETH-USD", "-0.5", PositionSide.SHORT)},
        {"USDC": usdc("100", PositionSide.SHORT)},
    )
    assert account_diff(state, same, []) == frozenset()
    flipped = subaccount(
        {"ETH-USD": position("ETH-USD", "0.5", PositionSide.LONG)},
        {"USDC": usdc("100", PositionSide.LONG)},
    )
    assert account_diff(state, flipped, []) == {
        ("position", "ETH-USD", D("-0.5")),
        ("asset", "USDC", D("-100")),
    }
    assert account_diff(state, None, []) == {
        ("position", "ETH-USD", D("-0.5")),
        ("asset", "USDC", D("-100")),
    }


# ----------------------------------------------------------------------------- DriftRepair


class ScriptedIndexer:
    """Loopback HTTP server answering each REST path from a script of ``(status, body)`` (the
    last entry repeats); records the paths asked for."""

    def __init__(self) -> None:
        self.scripts: Dict[str, List[Tuple[int, Any]]] = {}
        self.requests: List[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                fake.requests.append(path)
                script = fake.scripts.get(path) or [(404, {"errors": [{"msg": "not found"}]})]
                status, body = script.pop(0) if len(script) > 1 else script[0]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="scripted-rest")
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def indexer() -> Iterator[ScriptedIndexer]:
    server = ScriptedIndexer()
    yield server
    server.close()


def book_body(bids: List[Tuple[str, str]], asks: List[Tuple[str, str]]) -> Dict[str, Any]:
    def side(pairs: List[Tuple[str, str]]) -> List[Dict[str, str]]:
        return [{"price": p, "size": s} for p, s in pairs]

    return {"bids": side(bids), "asks": side(asks)}


BOOK_PATH = "/v4/orderbooks/perpetualMarket/BTC-USD"


class Engine:
    """Drift repair with real collaborators: a local state store and registry holding an active
    BTC-USD book, a worker pool that is not started yet (a repair waits there, queued behind the
    stream, until ``run_worker``), an event emitter on that pool, the client's counters, and a
    REST client for the scripted server."""

    def __init__(self, indexer: ScriptedIndexer, *channels: str) -> None:
        self.store = LocalState("message_id")
        self.registry = SubscriptionRegistry()
        for channel, wire_id in [("v4_orderbook", "BTC-USD")] + [(c, None) for c in channels]:
            topic = Topic(channel, wire_id, False)
            self.registry.add(topic, None, {})
            self.registry.confirm(topic.key)
            self.store.create(topic)
        self.book = self.store.books["BTC-USD"]
        self.pool = Dispatcher(name_prefix="test-drift")
        hub = EventHub()
        self.events: List[ResyncEvent] = []
        hub.add("resync", self.events.append)
        self.counters = Counters(COUNTERS)
        self.rest = IndexerRestClient(indexer.url, timeout=5.0, retries=0)
        self.drift = DriftRepair(
            store=self.store,
            registry=self.registry,
            call_soon=self.pool.call_soon,
            emitter=Emitter(hub, self.pool.call_soon),
            counters=self.counters,
            connected=lambda: True,
            rest=self.rest,
            interval=60,
            confirm_delay=0,
        )

    def run_worker(self) -> None:
        """Start the pool and wait until the book's worker and the event worker are idle."""
        self.pool.start(lambda key, item: None)
        for key in (("v4_orderbook", "BTC-USD"), Emitter.KEY):
            done = threading.Event()
            assert self.pool.call_soon(key, done.set)
            assert done.wait(10)

    def close(self) -> None:
        assert self.pool.stop(10)
        self.rest.close()


@pytest.fixture
def engine(indexer: ScriptedIndexer) -> Iterator[Engine]:
    e = Engine(indexer)
    e.book.apply_snapshot(levels(("100", "1"), ("99", "2")), levels(("101", "1")), message_id=1)
    yield e
    e.close()


def test_confirmed_book_drift_is_repaired_on_the_worker(
    indexer: ScriptedIndexer, engine: Engine
) -> None:
    indexer.scripts[BOOK_PATH] = [(200, book_body([("99", "2")], [("101", "1")]))]
    assert engine.drift.check_once() == 1 and engine.drift.repairs == 1
    assert engine.book.size_at("100") == 1  # not yet: the repair is queued behind the stream
    engine.run_worker()
    assert engine.book.bids == levels(("99", "2"))
    assert engine.counters["drift_repairs"] == 1 and engine.counters["resyncs"] == 1
    assert engine.counters["resubscribes"] == 0
    assert engine.events == [ResyncEvent("v4_orderbook", "BTC-USD", 1, [("bid", D(100), D(1))])]


def test_book_repair_skipped_when_the_stream_changed_the_level_first(
    indexer: ScriptedIndexer, engine: Engine
) -> None:
    indexer.scripts[BOOK_PATH] = [(200, book_body([("99", "2")], [("101", "1")]))]
    assert engine.drift.check_once() == 1
    engine.book.apply_levels(levels(("100", "4")), [], message_id=2)  # newer than the REST view
    engine.run_worker()
    assert engine.book.size_at("100", "bid") == 4
    assert engine.counters["drift_repairs"] == 0 and engine.events == []


def test_transient_book_difference_is_not_drift(indexer: ScriptedIndexer, engine: Engine) -> None:
    indexer.scripts[BOOK_PATH] = [  # REST lagging, then caught up
        (200, book_body([("100", "2"), ("99", "2")], [("101", "1")])),
        (200, book_body([("100", "1"), ("99", "2")], [("101", "1")])),
    ]
    assert engine.drift.check_once() == 0 and indexer.requests == [BOOK_PATH] * 2
    engine.run_worker()
    assert engine.book.size_at("100") == 1 and engine.events == []


def test_an_inactive_subscription_is_not_checked(indexer: ScriptedIndexer, engine: Engine) -> None:
    engine.registry.mark_all_pending()  # e.g. disconnected: no snapshot confirmed
    assert engine.drift.check_once() == 0 and indexer.requests == []


def test_one_failing_check_does_not_stop_the_pass(indexer: ScriptedIndexer) -> None:
    engine = Engine(indexer, "v4_markets")
    try:
        engine.book.apply_snapshot(levels(("100", "1")), levels(("101", "1")), message_id=1)
        indexer.scripts[BOOK_PATH] = [(500, {"errors": [{"msg": "REST down"}]})]
        indexer.scripts["/v4/perpetualMarkets"] = [(200, {"markets": {}})]
        assert engine.drift.check_once() == 0
        assert indexer.requests[0] == BOOK_PATH
        assert "/v4/perpetualMarkets" in indexer.requests  # the markets check still ran
    finally:
        engine.close()
