"""Drift repair: compare local state with the Indexer's REST views on a timer, and repair it.

Why: the stream can silently diverge from the server. The server deletes crossed order book
levels without publishing anything (docs/protocol.md §3.3), drops messages published while a
subscription's snapshot is being fetched (§2.5 there), and has no sequence numbers to detect a gap.

How (thread "dydx-ws-resync", every ``interval`` seconds while connected):

- For each active order book, the markets and each subscribed (parent) subaccount, fetch the REST
  view and compare. A difference is keyed by the *local* value (e.g. ``(side, price, size)``).
- Only a difference that is still there, with the same local value, on a second fetch
  ``confirm_delay`` seconds later counts as drift: updates still in flight, or fields that move
  every block (oracle prices, busy levels), never qualify.
- The repair runs on the subscription's own worker (``Dispatcher.call_soon``), so it is ordered
  with the stream. It first compares again with the second REST view: if the stream changed one
  of the drifted values meanwhile, that update is newer than REST and nothing is repaired. Else
  book levels are set to the REST sizes (removed if REST has none), drifted markets and the
  account are replaced by the REST view. Each repair is counted (``stats()["drift_repairs"]``,
  and the ``"resyncs"`` total) and reported through ``on("resync")``.
- One failing check (a REST error) is logged and does not stop the others of the same pass.
- REST route limits (docs/protocol.md §4.12): the checks of a pass are spread over half the interval
  instead of a burst, and the REST client given by the SDK goes through the client's shared
  :class:`~dydx_ws._route_limits.RouteLimiter`. A check whose route budget is spent (or blocked by
  a 429's ``Retry-After``) is deferred to the next pass and counted (``deferred``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import fields
from decimal import Decimal
from functools import partial
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Hashable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from .._route_limits import RequestDeferred
from ..errors import DydxWsError
from ..events import Counters, Emitter, ResyncEvent
from ..models import Order, PerpetualMarket, PositionSide, PriceLevel
from ..protocol._channels import MARKETS, ORDERBOOK, PARENT_SUBACCOUNTS, channel
from ..rest import IndexerRestClient
from ..state import ParentSubaccountState, SubaccountState
from ..state._orderbook import OrderBook
from ..state._store import LocalState
from ._subscriptions import SubscriptionRegistry, SubscriptionState

Account = Union[SubaccountState, ParentSubaccountState]

__all__ = ["DriftRepair"]

log = logging.getLogger("dydx_ws.engine._drift_repair")

OPEN_STATUSES = ["OPEN", "UNTRIGGERED", "BEST_EFFORT_OPENED"]
REST_BOOK_DEPTH = 100  # comlink serves at most 100 levels per side
Diff = FrozenSet[Tuple[Any, ...]]
_ZERO = Decimal(0)


class DriftRepair:
    """The periodic comparison and repair of one client's local state (see module docs).

    Collaborators: ``store`` (the books, markets and accounts compared and repaired),
    ``registry`` (only active subscriptions are checked), ``call_soon(key, fn)`` (runs a repair
    on the subscription's worker; False if the pool is stopping), ``emitter`` and ``counters``
    (reporting), ``connected()`` (checks run only while connected) and ``rest``."""

    def __init__(
        self,
        *,
        store: LocalState,
        registry: SubscriptionRegistry,
        call_soon: Callable[[Hashable, Callable[[], None]], bool],
        emitter: Emitter,
        counters: Counters,
        connected: Callable[[], bool],
        rest: IndexerRestClient,
        interval: float,
        confirm_delay: float = 1.0,
    ) -> None:
        self._store = store
        self._registry = registry
        self._call_soon = call_soon
        self._emitter = emitter
        self._counters = counters
        self._connected = connected
        self._rest = rest
        self._interval = interval
        self._confirm = confirm_delay
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.checks = 0
        self.repairs = 0
        self.deferred = 0  # checks put off because their REST route's budget was spent
        self.last_deferred: Optional[str] = None  # "channel id" of the last one

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dydx-ws-resync", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> Optional[threading.Thread]:
        return self._thread

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._connected():
                try:
                    self.check_once(spread=True)
                except Exception as exc:  # a REST outage must not end the checks
                    log.info("drift check failed: %s", exc)

    # -- one pass ---------------------------------------------------------------------------
    def check_once(self, spread: bool = False) -> int:
        """Compare everything once (blocking); returns how many repairs were scheduled.
        ``spread``: pause between checks so the pass takes about half the interval."""
        self.checks += 1
        repaired = 0
        checks: List[Tuple[Tuple[str, Optional[str]], Callable[[], int]]] = []
        for ticker in list(self._store.books):
            checks.append(((ORDERBOOK, ticker), partial(self._check_book, ticker)))
        checks.append(((MARKETS, None), self._check_markets))
        for key, state in list(self._store.accounts.items()):
            checks.append((key, partial(self._check_account, key, state)))
        gap = self._interval / 2 / len(checks) if spread else 0.0
        first = True
        for key, check in checks:
            if self._stop.is_set():
                break
            if not self._active(key):
                continue
            if not first and gap > 0 and self._stop.wait(gap):
                break
            first = False
            try:
                repaired += check()
            except RequestDeferred as exc:  # the route's budget is spent: next pass
                self.deferred += 1
                self.last_deferred = f"{key[0]} {key[1] or ''}".strip()
                log.info("drift check of %s %s deferred: %s", *key, exc)
            except Exception as exc:  # one REST failure must not skip the other checks
                log.info("drift check of %s %s failed: %s", *key, exc)
        return repaired

    def _active(self, key: Tuple[str, Optional[str]]) -> bool:
        entry = self._registry.get(key)
        return entry is not None and entry.state is SubscriptionState.ACTIVE

    def _confirmed(self, fetch: Callable[[], Any], compare: Callable[[Any], Diff]) -> Any:
        """``(rest_view, persistent differences)`` or None when nothing is drift."""
        return confirm_drift(fetch, compare, lambda: self._stop.wait(self._confirm))

    def _repair(
        self,
        key: Tuple[str, Optional[str]],
        diff: Diff,
        still: Callable[[], Diff],
        fix: Callable[[], None],
    ) -> int:
        """Schedule ``fix`` on ``key``'s worker, to run only if ``still()`` (the comparison with
        the same REST view, made there) still holds every confirmed difference."""

        def run() -> None:
            if not diff <= still():
                log.debug("%s %s changed by the stream before its repair: skipped", *key)
                return
            fix()
            self._counters.add("drift_repairs")
            self._counters.add("resyncs")  # the total, with re-subscribes (engine/_io_side.py)
            detail = sorted(diff, key=repr)[:20]
            log.warning("%s %s drifted from REST at %d point(s): repaired", *key, len(diff))
            self._emitter.emit("resync", ResyncEvent(key[0], key[1], len(diff), detail))

        if not self._call_soon(key, run):
            return 0
        self.repairs += 1
        return 1

    # -- order books ------------------------------------------------------------------------
    def _check_book(self, ticker: str) -> int:
        book = self._store.books.get(ticker)
        if book is None or book.stale:
            return 0

        def compare(rest: Any) -> Diff:
            return book_diff(book, rest.bids, rest.asks)

        result = self._confirmed(lambda: self._rest.get_orderbook(ticker), compare)
        if result is None:
            return 0
        rest, diff = result
        sizes = {
            "bid": {lv.price: lv.size for lv in rest.bids},
            "ask": {lv.price: lv.size for lv in rest.asks},
        }
        fixes: Dict[str, List[PriceLevel]] = {"bid": [], "ask": []}
        for side, price, _ in diff:
            fixes[side].append(PriceLevel(price, sizes[side].get(price, _ZERO)))

        return self._repair(
            (ORDERBOOK, ticker),
            diff,
            lambda: compare(rest),
            lambda: book.apply_levels(fixes["bid"], fixes["ask"]),
        )

    # -- markets ------------------------------------------------------------------------------
    def _check_markets(self) -> int:
        state = self._store.markets

        def compare(rest: Dict[str, PerpetualMarket]) -> Diff:
            return markets_diff(state.snapshot(), rest)

        result = self._confirmed(self._rest.get_perpetual_markets, compare)
        if result is None:
            return 0
        rest, diff = result
        tickers = {d[0] for d in diff}

        def fix() -> None:
            merged = state.snapshot()
            for ticker in tickers:
                if ticker in rest:
                    merged[ticker] = rest[ticker]
                else:
                    merged.pop(ticker, None)
            state.replace_all(merged)

        return self._repair((MARKETS, None), diff, lambda: compare(rest), fix)

    # -- subaccounts --------------------------------------------------------------------------
    def _check_account(self, key: Tuple[str, Optional[str]], state: Account) -> int:
        params = channel(key[0]).parse_id(key[1] or "")
        address, number = params["address"], params["subaccount_number"]
        parent = key[0] == PARENT_SUBACCOUNTS
        rest = self._rest

        def fetch() -> Tuple[Any, List[Order]]:
            try:
                view: Any = (
                    rest.get_parent_subaccount(address, int(number))
                    if parent
                    else rest.get_subaccount(address, int(number))
                )
            except DydxWsError as exc:  # 404: the subaccount does not exist (yet)
                if getattr(exc, "status", None) != 404:
                    raise
                view = None
            if parent:
                orders = rest.get_parent_orders(address, int(number), status=OPEN_STATUSES)
            else:
                orders = rest.get_orders(address, int(number), status=OPEN_STATUSES)
            return view, orders

        def compare(fetched: Tuple[Any, List[Order]]) -> Diff:
            view, orders = fetched
            return account_diff(state, view, orders)

        result = self._confirmed(fetch, compare)
        if result is None:
            return 0
        fetched, diff = result
        return self._repair(
            key, diff, lambda: compare(fetched), lambda: state.replace_from_rest(*fetched)
        )


# -- comparisons: each difference is keyed by the LOCAL value (see confirm_drift) ----------------
def confirm_drift(
    fetch: Callable[[], Any], compare: Callable[[Any], Diff], wait: Callable[[], bool]
) -> Optional[Tuple[Any, Diff]]:
    """``(second REST view, persistent differences)``, or None when nothing is drift.

    ``compare(view)`` reads the local state now. A difference persists when the second fetch,
    after ``wait()`` (True: stop), finds it again with the same local value: an update in flight
    changes the local value, a REST view that catches up removes the difference.
    """
    first = compare(fetch())
    if not first or wait():
        return None
    view = fetch()
    persistent = first & compare(view)
    return (view, persistent) if persistent else None


def book_diff(book: OrderBook, bids: List[PriceLevel], asks: List[PriceLevel]) -> Diff:
    """``("bid"|"ask", price, local size)`` wherever ``book`` differs from a REST body (top 100
    levels per side, see :meth:`OrderBook.diff`); nothing while the book is stale."""
    view = book.copy()  # diff and sizes from one consistent moment
    if view.stale:
        return frozenset()
    found = view.diff(bids, asks, depth=REST_BOOK_DEPTH)
    return frozenset(
        [("bid", p, view.size_at(p, "bid")) for p in found.bids]
        + [("ask", p, view.size_at(p, "ask")) for p in found.asks]
    )


def markets_diff(local: Dict[str, PerpetualMarket], rest: Dict[str, PerpetualMarket]) -> Diff:
    """``(ticker, field, local value)`` for every field REST sets to another value, and
    ``(ticker, "market", present locally)`` for a market only one side has."""
    out: List[Tuple[Any, ...]] = []
    for ticker in set(local) | set(rest):
        mine, theirs = local.get(ticker), rest.get(ticker)
        if mine is None or theirs is None:
            out.append((ticker, "market", mine is not None))
            continue
        for f in fields(theirs):
            value = getattr(theirs, f.name)
            if value is not None and getattr(mine, f.name) != value:
                out.append((ticker, f.name, getattr(mine, f.name)))
    return frozenset(out)


def account_diff(state: Account, view: Any, orders: List[Order]) -> Diff:
    """Positions, asset positions (per child for a parent) and open orders that differ between
    ``state`` and a REST view (None: the subaccount does not exist) plus its open orders."""
    out: List[Tuple[Any, ...]] = []
    if isinstance(state, ParentSubaccountState):
        children = state.children
        rest_children = {c.subaccount_number: c for c in (view.child_subaccounts if view else [])}
        for n in set(children) | set(rest_children):
            out += [(n, *d) for d in _holdings_diff(children.get(n), rest_children.get(n))]
    else:
        out += _holdings_diff(state, view)
    local_orders = state.open_orders
    rest_orders = {o.id: o for o in orders}
    for oid in set(local_orders) | set(rest_orders):
        mine = _order_sig(local_orders.get(oid))
        if mine != _order_sig(rest_orders.get(oid)):
            out.append(("order", oid, mine))
    return frozenset(out)


def _holdings_diff(state: Optional[SubaccountState], view: Any) -> List[Tuple[Any, ...]]:
    """Positions and asset positions as signed sizes (REST sends a SHORT position's size
    negative; comparing the signed value does not depend on that convention)."""
    local = state.view() if state is not None else None
    pairs = (
        (
            "position",
            _signed_sizes(local.positions if local else {}),
            _signed_sizes(view.open_perpetual_positions if view else {}),
        ),
        (
            "asset",
            _signed_sizes(local.asset_positions if local else {}),
            _signed_sizes(view.asset_positions if view else {}),
        ),
    )
    out: List[Tuple[Any, ...]] = []
    for kind, mine, theirs in pairs:
        for name in set(mine) | set(theirs):
            if mine.get(name) != theirs.get(name):
                out.append((kind, name, mine.get(name)))
    return out


def _signed_sizes(holdings: Mapping[str, Any]) -> Dict[str, Decimal]:
    out: Dict[str, Decimal] = {}
    for name, h in holdings.items():
        if h.size:
            out[name] = -abs(h.size) if h.side == PositionSide.SHORT else abs(h.size)
    return out


def _order_sig(order: Optional[Order]) -> Optional[Hashable]:
    if order is None:
        return None
    return (order.status, order.size, order.price, order.total_filled)
