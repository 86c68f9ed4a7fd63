"""DriftRepair's comparison logic: a difference is drift only if it persists with the same local
value across two REST views, and a repair is skipped if the stream changed the value meanwhile.

No network and no sleeps: REST is a scripted object, the worker a list of queued calls."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

from dydx_ws import ResyncEvent
from dydx_ws.engine._drift_repair import (
    DriftRepair,
    account_diff,
    book_diff,
    confirm_drift,
    markets_diff,
)
from dydx_ws.engine._subscriptions import SubscriptionState
from dydx_ws.events import Counters
from dydx_ws.models import (
    AssetPosition,
    OrderbookResponse,
    PerpetualMarket,
    PerpetualPosition,
    PositionSide,
    PriceLevel,
    Subaccount,
)
from dydx_ws.state import SubaccountState
from dydx_ws.state._orderbook import OrderBook

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


class FakeRest:
    def __init__(self, books: List[OrderbookResponse]) -> None:
        self.books = books

    def get_orderbook(self, ticker: str) -> OrderbookResponse:
        return self.books.pop(0) if len(self.books) > 1 else self.books[0]


class FakeClient:
    """The attributes DriftRepair reads; worker calls queue until ``run_worker``."""

    def __init__(self, book: OrderBook) -> None:
        self._books = {book.ticker: book}
        self._accounts: Dict[Any, Any] = {}
        self._markets = None
        self._counters = Counters(("resyncs",))
        self.events: List[ResyncEvent] = []
        self.queued: List[Callable[[], None]] = []
        active = SimpleNamespace(state=SubscriptionState.ACTIVE)
        self._registry = SimpleNamespace(
            get=lambda key: active if key == ("v4_orderbook", book.ticker) else None
        )
        self._dispatcher = SimpleNamespace(call_soon=self._call_soon)
        self.connected = True

    def _call_soon(self, key: Hashable, fn: Callable[[], None]) -> bool:
        self.queued.append(fn)
        return True

    def _emit(self, name: str, event: ResyncEvent) -> None:
        self.events.append(event)

    def run_worker(self) -> None:
        while self.queued:
            self.queued.pop(0)()


def repairer(book: OrderBook, rest: List[OrderbookResponse]) -> Tuple[DriftRepair, FakeClient]:
    client = FakeClient(book)
    drift = DriftRepair(client, FakeRest(rest), interval=60, confirm_delay=0)  # type: ignore[arg-type]
    return drift, client


def rest_book(bids: List[PriceLevel], asks: List[PriceLevel]) -> OrderbookResponse:
    return OrderbookResponse(bids=bids, asks=asks)


def test_confirmed_book_drift_is_repaired_on_the_worker() -> None:
    book = book_with(levels(("100", "1"), ("99", "2")), levels(("101", "1")))
    drift, client = repairer(book, [rest_book(levels(("99", "2")), levels(("101", "1")))])
    assert drift.check_once() == 1 and drift.repairs == 1
    assert book.size_at("100") == 1  # not yet: the repair is queued behind the stream
    client.run_worker()
    assert book.bids == levels(("99", "2"))
    assert client._counters["resyncs"] == 1
    assert client.events == [ResyncEvent("v4_orderbook", "BTC-USD", 1, [("bid", D(100), D(1))])]


def test_book_repair_skipped_when_the_stream_changed_the_level_first() -> None:
    book = book_with(levels(("100", "1"), ("99", "2")), levels(("101", "1")))
    drift, client = repairer(book, [rest_book(levels(("99", "2")), levels(("101", "1")))])
    assert drift.check_once() == 1
    book.apply_levels(levels(("100", "4")), [], message_id=2)  # newer than the REST view
    client.run_worker()
    assert book.size_at("100", "bid") == 4
    assert client._counters["resyncs"] == 0 and client.events == []


def test_transient_book_difference_is_not_drift() -> None:
    book = book_with(levels(("100", "1")), levels(("101", "1")))
    first = rest_book(levels(("100", "2")), levels(("101", "1")))  # REST lagging, then caught up
    drift, client = repairer(book, [first, rest_book(levels(("100", "1")), levels(("101", "1")))])
    assert drift.check_once() == 0 and client.queued == []


def test_one_failing_check_does_not_stop_the_pass() -> None:
    book = book_with(levels(("100", "1")), levels(("101", "1")))
    drift, client = repairer(book, [rest_book([], [])])

    def broken(ticker: str) -> OrderbookResponse:
        raise RuntimeError("REST down")

    drift._rest.get_orderbook = broken  # type: ignore[method-assign]
    client._registry.get = lambda key: SimpleNamespace(state=SubscriptionState.ACTIVE)
    checked: List[Optional[str]] = []
    drift._check_markets = lambda: checked.append("markets") or 0  # type: ignore[method-assign]
    assert drift.check_once() == 0
    assert checked == ["markets"]
