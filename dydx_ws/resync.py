"""Drift repair: compare local state with the Indexer's REST views on a timer, and repair it.

Why: the stream can silently diverge from the server. The server deletes crossed order book
levels without publishing anything (protocol.md §3.3), drops messages published while a
subscription's snapshot is being fetched (§2.5), and has no sequence numbers to detect a gap.

How (thread "dydx-ws-resync", every ``interval`` seconds while connected):

- For each active order book, the markets and each subscribed (parent) subaccount, fetch the REST
  view and compare. A difference is keyed by the *local* value (e.g. ``(side, price, size)``).
- Only a difference that is still there, with the same local value, on a second fetch
  ``confirm_delay`` seconds later counts as drift: updates still in flight, or fields that move
  every block (oracle prices, busy levels), never qualify.
- The repair runs on the subscription's own worker (``Dispatcher.call_soon``), so it is ordered
  with the stream: book levels are set to the REST sizes (removed if REST has none), markets and
  accounts are replaced by the REST view. Each repair is counted (``stats()["resyncs"]``) and
  reported through ``on("resync")``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Hashable, List, Optional, Tuple

from .errors import DydxWsError
from .models import Order, PerpetualMarket, PriceLevel
from .rest import IndexerRestClient
from .subscriptions import SubscriptionState

if TYPE_CHECKING:
    from .client import DydxWebSocketClient
    from .state import SubaccountState

__all__ = ["DriftRepair", "ResyncEvent"]

log = logging.getLogger("dydx_ws.resync")

OPEN_STATUSES = ["OPEN", "UNTRIGGERED", "BEST_EFFORT_OPENED"]
REST_BOOK_DEPTH = 100  # comlink serves at most 100 levels per side
Diff = FrozenSet[Tuple[Any, ...]]


@dataclass(frozen=True)
class ResyncEvent:
    """Local state differed from REST beyond in-flight updates and was repaired."""

    channel: str
    id: Optional[str]
    differences: int
    detail: List[Tuple[Any, ...]]


class DriftRepair:
    """The periodic comparison and repair of one client's local state (see module docs)."""

    def __init__(
        self,
        client: DydxWebSocketClient,
        rest: IndexerRestClient,
        *,
        interval: float,
        confirm_delay: float = 1.0,
    ) -> None:
        self._client = client
        self._rest = rest
        self._interval = interval
        self._confirm = confirm_delay
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.checks = 0
        self.repairs = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dydx-ws-resync", daemon=False)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._client.connected:
                try:
                    self.check_once()
                except Exception as exc:  # a REST outage must not end the checks
                    log.info("drift check failed: %s", exc)

    # -- one pass ---------------------------------------------------------------------------
    def check_once(self) -> int:
        """Compare everything once (blocking); returns how many repairs were scheduled."""
        self.checks += 1
        repaired = 0
        client = self._client
        for ticker in list(client._books):
            if self._active(("v4_orderbook", ticker)):
                repaired += self._check_book(ticker)
        if self._active(("v4_markets", None)):
            repaired += self._check_markets()
        for key, state in list(client._accounts.items()):
            if self._active(key):
                repaired += self._check_account(key, state)
        return repaired

    def _active(self, key: Tuple[str, Optional[str]]) -> bool:
        entry = self._client._registry.get(key)
        return entry is not None and entry.state is SubscriptionState.ACTIVE

    def _confirmed(self, fetch: Callable[[], Any], compare: Callable[[Any], Diff]) -> Any:
        """``(rest_view, persistent differences)`` or None when nothing is drift."""
        first = compare(fetch())
        if not first or self._stop.wait(self._confirm):
            return None
        view = fetch()
        persistent = first & compare(view)
        return (view, persistent) if persistent else None

    def _repair(self, key: Tuple[str, Optional[str]], diff: Diff, fix: Callable[[], None]) -> int:
        client = self._client

        def run() -> None:
            fix()
            client._counters["resyncs"] += 1
            detail = sorted(diff, key=repr)[:20]
            log.warning("%s %s drifted from REST at %d point(s): repaired", *key, len(diff))
            client._emit("resync", ResyncEvent(key[0], key[1], len(diff), detail))

        self.repairs += 1
        return 1 if client._dispatcher.call_soon(key, run) else 0

    # -- order books ------------------------------------------------------------------------
    def _check_book(self, ticker: str) -> int:
        book = self._client._books.get(ticker)
        if book is None or book.stale:
            return 0

        def compare(rest: Any) -> Diff:
            if book.stale:
                return frozenset()
            found = book.diff(rest.bids, rest.asks, depth=REST_BOOK_DEPTH)
            return frozenset(
                [("bid", p, book.size_at(p)) for p in found.bids]
                + [("ask", p, book.size_at(p)) for p in found.asks]
            )

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
            fixes[side].append(PriceLevel(price, sizes[side].get(price, type(price)(0))))

        return self._repair(
            ("v4_orderbook", ticker), diff, lambda: book.apply_levels(fixes["bid"], fixes["ask"])
        )

    # -- markets ------------------------------------------------------------------------------
    def _check_markets(self) -> int:
        state = self._client._markets

        def compare(rest: Dict[str, PerpetualMarket]) -> Diff:
            local = state.snapshot()
            out = []
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

        return self._repair(("v4_markets", None), diff, fix)

    # -- subaccounts --------------------------------------------------------------------------
    def _check_account(self, key: Tuple[str, Optional[str]], state: Any) -> int:
        address, number = (key[1] or "/").rsplit("/", 1)
        parent = key[0] == "v4_parent_subaccounts"
        rest = self._rest

        def fetch() -> Tuple[Any, List[Order]]:
            if parent:
                view: Any = rest.get_parent_subaccount(address, int(number))
                orders = rest.get_parent_orders(address, int(number), status=OPEN_STATUSES)
            else:
                try:
                    view = rest.get_subaccount(address, int(number))
                except DydxWsError as exc:  # 404: the subaccount does not exist (yet)
                    if getattr(exc, "status", None) != 404:
                        raise
                    view = None
                orders = rest.get_orders(address, int(number), status=OPEN_STATUSES)
            return view, orders

        def compare(fetched: Tuple[Any, List[Order]]) -> Diff:
            view, orders = fetched
            return _account_diff(state, view, orders, parent)

        result = self._confirmed(fetch, compare)
        if result is None:
            return 0
        (view, orders), diff = result
        return self._repair(key, diff, lambda: state.replace_from_rest(view, orders))


def _account_diff(state: Any, view: Any, orders: List[Order], parent: bool) -> Diff:
    out: List[Tuple[Any, ...]] = []
    if parent:
        children: Dict[int, Any] = state.children
        rest_children = {c.subaccount_number: c for c in (view.child_subaccounts if view else [])}
        for n in set(children) | set(rest_children):
            child = children.get(n)
            out += [(n, *d) for d in _positions_diff(child, rest_children.get(n))]
        local_orders = state.open_orders
    else:
        out += _positions_diff(state, view)
        local_orders = state.open_orders
    rest_orders = {o.id: o for o in orders}
    for oid in set(local_orders) | set(rest_orders):
        mine, theirs = local_orders.get(oid), rest_orders.get(oid)
        if _order_sig(mine) != _order_sig(theirs):
            out.append(("order", oid, _order_sig(mine)))
    return frozenset(out)


def _positions_diff(state: Optional[SubaccountState], view: Any) -> List[Tuple[Any, ...]]:
    local_pos = {m: (p.side, p.size) for m, p in (state.positions if state else {}).items()}
    rest_pos = {
        m: (p.side, p.size)
        for m, p in (view.open_perpetual_positions if view else {}).items()
        if p.size
    }
    local_assets = {
        s: (a.side, a.size) for s, a in (state.asset_positions if state else {}).items()
    }
    rest_assets = {s: (a.side, a.size) for s, a in (view.asset_positions if view else {}).items()}
    out: List[Tuple[Any, ...]] = []
    pairs = (("position", local_pos, rest_pos), ("asset", local_assets, rest_assets))
    for kind, mine, theirs in pairs:
        for name in set(mine) | set(theirs):
            if mine.get(name) != theirs.get(name):
                out.append((kind, name, mine.get(name)))
    return out


def _order_sig(order: Optional[Order]) -> Optional[Hashable]:
    if order is None:
        return None
    return (order.status, order.size, order.price, order.total_filled)
