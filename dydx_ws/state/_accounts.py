"""Live local views of subaccounts and parent subaccounts (docs/protocol.md §3.5, §3.6).

Job: keep, for one ``(address, number)``, the open orders, positions, asset positions, recent
fills/transfers/rewards and block height from the ``v4_subaccounts`` snapshot and its updates,
and answer ``equity`` / ``free_collateral``.

* A snapshot (or :meth:`SubaccountState.replace_from_rest`) replaces orders, positions and asset
  positions. Fills, transfers and trading rewards are history: bounded deques kept across
  snapshots (a snapshot does not repeat them).
* Updates carry only some fields of an order or position: they are merged field by field into the
  known object (a field that is None in the update is unchanged), with ``dataclasses.replace``.
* Orders leave ``open_orders`` on FILLED, CANCELED, BEST_EFFORT_CANCELED and ERROR; OPEN,
  UNTRIGGERED and BEST_EFFORT_OPENED (and statuses this SDK does not know yet) keep them.
  Positions leave on CLOSED / LIQUIDATED (or size 0); asset positions on size 0.

Equity: updates do not carry it. Without a market data source the last snapshot's ``equity`` and
``freeCollateral`` are returned. With one (:meth:`SubaccountState.set_price_source`, e.g. the
client's :class:`~dydx_ws.state._markets.MarketsState`) they are computed on every read::

    equity          = quote + sum(signed_size(p) * oracle_price(p.market) for p in positions)
    free_collateral = equity - sum(abs(signed_size(p) * oracle_price(p.market)) * imf(p.market)
                                   for p in positions)

where ``quote`` is the USDC asset position (LONG positive, SHORT negative), ``signed_size`` is
``size`` with the position's side (SHORT negative) and ``imf`` the market's initial margin
fraction. This is the protocol's cross-margin formula with the base IMF (it ignores the open
interest-based IMF scaling). If a needed price (or IMF) is unknown, the snapshot's value is used.

Thread safety: one writer, many readers. All mutation happens under a lock (shared by a parent
and its children, so a parent read is consistent across children); readers get copies (dicts,
lists) of objects the state never mutates after publication. :meth:`SubaccountState.view`
returns everything from one consistent moment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
    Union,
    runtime_checkable,
)

from ..models import (
    AssetPosition,
    Fill,
    Order,
    ParentSubaccount,
    PerpetualPosition,
    Subaccount,
    TradingReward,
    Transfer,
)
from ..models.enums import OrderStatus, PositionSide, PositionStatus
from ..protocol._messages import SubaccountMessage

__all__ = [
    "CallableMarketData",
    "MarketDataSource",
    "ParentSubaccountState",
    "SubaccountState",
    "SubaccountView",
]

logger = logging.getLogger("dydx_ws.state")

QUOTE_SYMBOL = "USDC"
QUOTE_ASSET_ID = "0"
CLOSED_ORDER_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.BEST_EFFORT_CANCELED,
        OrderStatus.ERROR,
    }
)
CLOSED_POSITION_STATUSES = frozenset({PositionStatus.CLOSED, PositionStatus.LIQUIDATED})
_ZERO = Decimal(0)

T = TypeVar("T")


@runtime_checkable
class MarketDataSource(Protocol):
    """What live equity needs from market data (``MarketsState`` implements it)."""

    def oracle_price(self, ticker: str) -> Optional[Decimal]:
        """The market's oracle price, None if unknown."""

    def initial_margin_fraction(self, ticker: str) -> Optional[Decimal]:
        """The market's initial margin fraction, None if unknown."""


class CallableMarketData:
    """A :class:`MarketDataSource` made of plain callables (ticker -> value or None)."""

    def __init__(
        self,
        price: Callable[[str], Optional[Decimal]],
        margin_fraction: Optional[Callable[[str], Optional[Decimal]]] = None,
    ) -> None:
        self._price = price
        self._imf = margin_fraction

    def oracle_price(self, ticker: str) -> Optional[Decimal]:
        return self._price(ticker)

    def initial_margin_fraction(self, ticker: str) -> Optional[Decimal]:
        return None if self._imf is None else self._imf(ticker)


PriceSource = Union[MarketDataSource, Callable[[str], Optional[Decimal]]]


def _as_source(
    source: Optional[PriceSource],
    margin_fraction: Optional[Callable[[str], Optional[Decimal]]],
) -> Optional[MarketDataSource]:
    if source is None:
        return None
    if isinstance(source, MarketDataSource) and margin_fraction is None:
        return source
    if isinstance(source, MarketDataSource):
        return CallableMarketData(source.oracle_price, margin_fraction)
    return CallableMarketData(source, margin_fraction)


def _merge(old: T, new: T) -> T:
    """``old`` with every field that is not None in ``new`` (a new object; ``old`` unchanged).

    The models are plain dataclasses without ``__post_init__``, so merging their ``__dict__``
    builds exactly what ``dataclasses.replace`` would, at a fraction of the cost (this runs for
    every order and position update).
    """
    merged: T = object.__new__(type(old))
    merged.__dict__ = {
        **old.__dict__,
        **{k: v for k, v in new.__dict__.items() if v is not None},
    }
    return merged


def _asset_key(asset: AssetPosition) -> str:
    """The symbol; 2023-era frames may carry only the asset id (``"0"`` is USDC)."""
    if asset.symbol is not None:
        return asset.symbol
    return QUOTE_SYMBOL if asset.asset_id == QUOTE_ASSET_ID else f"asset:{asset.asset_id}"


def _signed(side: Any, size: Decimal) -> Decimal:
    return -abs(size) if side == PositionSide.SHORT else abs(size)


@dataclass(frozen=True)
class SubaccountView:
    """Everything known about one subaccount, read at one consistent moment."""

    address: str
    subaccount_number: int
    equity: Optional[Decimal]
    free_collateral: Optional[Decimal]
    open_orders: Dict[str, Order]
    positions: Dict[str, PerpetualPosition]
    asset_positions: Dict[str, AssetPosition]
    fills: List[Fill]
    transfers: List[Transfer]
    trading_rewards: List[TradingReward]
    block_height: Optional[int]
    updated_at: Optional[float]


class _Account:
    """The mutable data of one subaccount (no locking: the owner holds the lock)."""

    def __init__(self, history: int) -> None:
        self.has_snapshot = False
        self.subaccount: Optional[Subaccount] = None
        self.snap_equity: Optional[Decimal] = None
        self.snap_free: Optional[Decimal] = None
        self.orders: Dict[str, Order] = {}
        self.positions: Dict[str, PerpetualPosition] = {}
        self.assets: Dict[str, AssetPosition] = {}
        self.fills: Deque[Fill] = deque(maxlen=history)
        self.transfers: Deque[Transfer] = deque(maxlen=history)
        self.rewards: Deque[TradingReward] = deque(maxlen=history)
        self.block_height: Optional[int] = None
        self.updated_at: Optional[float] = None

    def load(
        self,
        subaccount: Optional[Subaccount],
        orders: Iterable[Order],
        block_height: Optional[int],
    ) -> None:
        """Replace orders and positions with a snapshot (None: the subaccount does not exist)."""
        self.has_snapshot = True
        self.subaccount = subaccount
        if subaccount is None:
            self.snap_equity = self.snap_free = _ZERO
            self.positions, self.assets = {}, {}
        else:
            self.snap_equity = subaccount.equity
            self.snap_free = subaccount.free_collateral
            self.positions = {
                m: p
                for m, p in subaccount.open_perpetual_positions.items()
                if p.status not in CLOSED_POSITION_STATUSES and p.size
            }
            self.assets = {s: a for s, a in subaccount.asset_positions.items() if a.size}
        self.orders = {}
        for order in orders:
            self.order(order)
        self.height(block_height)
        self.updated_at = time.time()

    def update(self, msg: SubaccountMessage) -> None:
        for order in msg.orders:
            self.order(order)
        for pos in msg.perpetual_positions:
            known = self.positions.get(pos.market)
            merged = pos if known is None else _merge(known, pos)
            if merged.status in CLOSED_POSITION_STATUSES or not merged.size:
                self.positions.pop(pos.market, None)
            else:
                self.positions[pos.market] = merged
        for asset in msg.asset_positions:
            key = _asset_key(asset)
            known_asset = self.assets.get(key)
            merged_asset = asset if known_asset is None else _merge(known_asset, asset)
            if merged_asset.size:
                self.assets[key] = merged_asset
            else:
                self.assets.pop(key, None)
        self.fills.extend(msg.fills)
        self.transfers.extend(msg.transfers)
        self.rewards.extend(msg.trading_rewards)
        self.height(msg.block_height)
        self.updated_at = time.time()

    def order(self, order: Order) -> None:
        known = self.orders.get(order.id)
        merged = order if known is None else _merge(known, order)
        if merged.status in CLOSED_ORDER_STATUSES:
            self.orders.pop(order.id, None)
        else:
            self.orders[order.id] = merged

    def height(self, block_height: Optional[int]) -> None:
        if block_height is not None and (
            self.block_height is None or block_height > self.block_height
        ):
            self.block_height = block_height


@dataclass(frozen=True)
class _Raw:
    """Copies of one account's data, taken under the lock and computed on outside it."""

    has_snapshot: bool
    snap_equity: Optional[Decimal]
    snap_free: Optional[Decimal]
    orders: Dict[str, Order]
    positions: Dict[str, PerpetualPosition]
    assets: Dict[str, AssetPosition]

    @classmethod
    def of(cls, acct: _Account) -> _Raw:
        return cls(
            acct.has_snapshot,
            acct.snap_equity,
            acct.snap_free,
            dict(acct.orders),
            dict(acct.positions),
            dict(acct.assets),
        )

    def money(
        self, source: Optional[MarketDataSource]
    ) -> Tuple[Optional[Decimal], Optional[Decimal]]:
        """``(equity, free_collateral)`` by the module's formula, or the snapshot's values."""
        if not self.has_snapshot:
            return None, None
        if source is None:
            return self.snap_equity, self.snap_free
        equity = sum(
            (_signed(a.side, a.size) for k, a in self.assets.items() if k == QUOTE_SYMBOL), _ZERO
        )
        initial_margin: Optional[Decimal] = _ZERO
        for pos in self.positions.values():
            price = source.oracle_price(pos.market)
            if price is None:
                return self.snap_equity, self.snap_free
            notional = _signed(pos.side, pos.size) * price
            equity += notional
            imf = source.initial_margin_fraction(pos.market)
            if imf is None or initial_margin is None:
                initial_margin = None
            else:
                initial_margin += abs(notional) * imf
        free = self.snap_free if initial_margin is None else equity - initial_margin
        return equity, free


class _LiveEquity:
    """What both live views share: the address and equity / free collateral read from
    ``_money()`` (copies taken under the lock, the price source called outside it)."""

    _address: str

    @property
    def address(self) -> str:
        return self._address

    def _money(self) -> Tuple[Optional[Decimal], Optional[Decimal]]:
        raise NotImplementedError

    @property
    def equity(self) -> Optional[Decimal]:
        """Equity (USDC): live with a price source, else the last snapshot's; None before the
        first snapshot."""
        return self._money()[0]

    @property
    def free_collateral(self) -> Optional[Decimal]:
        """Free collateral (USDC), like :attr:`equity`."""
        return self._money()[1]


class SubaccountState(_LiveEquity):
    """Live view of one subaccount ``(address, number)``; see the module docs for the rules."""

    def __init__(
        self,
        address: str,
        subaccount_number: int,
        *,
        history: int = 1000,
        lock: Optional[threading.RLock] = None,
    ) -> None:
        self._address = address
        self._number = subaccount_number
        self._lock = lock if lock is not None else threading.RLock()
        self._acct = _Account(history)
        self._source: Optional[MarketDataSource] = None

    # ---------------------------------------------------------------- writing

    def apply(self, msg: SubaccountMessage) -> None:
        """Apply one decoded ``v4_subaccounts`` frame (snapshot replaces, updates merge)."""
        with self._lock:
            if msg.is_snapshot:
                sub = msg.subaccount
                if isinstance(sub, ParentSubaccount):
                    raise TypeError("a parent snapshot goes to ParentSubaccountState")
                self._acct.load(sub, msg.orders, msg.block_height)
            else:
                self._acct.update(msg)

    def replace_from_rest(
        self,
        subaccount: Optional[Subaccount],
        orders: Iterable[Order],
        block_height: Optional[int] = None,
    ) -> None:
        """Resync from REST (``get_subaccount`` + ``get_orders``): replaces like a snapshot."""
        with self._lock:
            self._acct.load(subaccount, orders, block_height)

    def set_price_source(
        self,
        source: Optional[PriceSource],
        margin_fraction: Optional[Callable[[str], Optional[Decimal]]] = None,
    ) -> None:
        """Compute equity live from ``source``: a :class:`MarketDataSource` (e.g. the client's
        ``MarketsState``) or a callable ``ticker -> oracle price`` (then ``margin_fraction`` gives
        the initial margin fraction). ``None`` detaches it (back to the snapshot's values)."""
        self._source = _as_source(source, margin_fraction)

    # ---------------------------------------------------------------- reading (any thread)

    @property
    def subaccount_number(self) -> int:
        return self._number

    @property
    def has_snapshot(self) -> bool:
        """True once a snapshot or REST resync was applied."""
        return self._acct.has_snapshot

    @property
    def subaccount(self) -> Optional[Subaccount]:
        """The last snapshot's subaccount object (None before it, or if it did not exist)."""
        return self._acct.subaccount

    def _money(self) -> Tuple[Optional[Decimal], Optional[Decimal]]:
        with self._lock:
            raw = _Raw.of(self._acct)
        return raw.money(self._source)  # outside the lock: the source may take its time

    @property
    def open_orders(self) -> Dict[str, Order]:
        """Order id -> order, for orders still open (a copy)."""
        with self._lock:
            return dict(self._acct.orders)

    @property
    def positions(self) -> Dict[str, PerpetualPosition]:
        """Market -> open perpetual position (a copy)."""
        with self._lock:
            return dict(self._acct.positions)

    @property
    def asset_positions(self) -> Dict[str, AssetPosition]:
        """Symbol -> asset position (a copy)."""
        with self._lock:
            return dict(self._acct.assets)

    @property
    def fills(self) -> List[Fill]:
        """The most recent fills (at most ``history``), oldest first."""
        with self._lock:
            return list(self._acct.fills)

    @property
    def transfers(self) -> List[Transfer]:
        """The most recent transfers, oldest first."""
        with self._lock:
            return list(self._acct.transfers)

    @property
    def trading_rewards(self) -> List[TradingReward]:
        """The most recent trading rewards, oldest first."""
        with self._lock:
            return list(self._acct.rewards)

    @property
    def block_height(self) -> Optional[int]:
        """Highest block height seen in a snapshot or update."""
        return self._acct.block_height

    @property
    def updated_at(self) -> Optional[float]:
        return self._acct.updated_at

    def view(self) -> SubaccountView:
        """Everything at once, from one consistent moment."""
        with self._lock:
            build = self._view_builder()
        return build(self._source)  # outside the lock: the source may take its time

    def _view_builder(self) -> Callable[[Optional[MarketDataSource]], SubaccountView]:
        """Copies taken now (the caller holds the lock) and a function building the view."""
        acct = self._acct
        raw = _Raw.of(acct)
        fills, transfers, rewards = list(acct.fills), list(acct.transfers), list(acct.rewards)
        height, updated_at = acct.block_height, acct.updated_at

        def build(source: Optional[MarketDataSource]) -> SubaccountView:
            equity, free = raw.money(source)
            return SubaccountView(
                address=self._address,
                subaccount_number=self._number,
                equity=equity,
                free_collateral=free,
                open_orders=raw.orders,
                positions=raw.positions,
                asset_positions=raw.assets,
                fills=fills,
                transfers=transfers,
                trading_rewards=rewards,
                block_height=height,
                updated_at=updated_at,
            )

        return build

    def __repr__(self) -> str:
        return (
            f"SubaccountState({self._address}/{self._number}, equity={self.equity}, "
            f"orders={len(self._acct.orders)}, positions={len(self._acct.positions)})"
        )


class ParentSubaccountState(_LiveEquity):
    """Live view of a parent subaccount: its children kept apart, by child number.

    The snapshot's ``child_subaccounts`` (and its orders, by ``subaccount_number``) fill
    :attr:`children`; an update goes to the child named by the message's ``subaccount_number``
    (a child first seen in an update starts empty). ``equity``/``free_collateral`` are the sums
    over the children, or the parent snapshot's values when it listed no children.
    """

    def __init__(self, address: str, parent_number: int, *, history: int = 1000) -> None:
        self._address = address
        self._number = parent_number
        self._history = history
        self._lock = threading.RLock()
        self._children: Dict[int, SubaccountState] = {}
        self._parent: Optional[ParentSubaccount] = None
        self._has_snapshot = False
        self._source: Optional[MarketDataSource] = None
        self._block_height: Optional[int] = None

    def _child(self, number: int) -> SubaccountState:
        child = self._children.get(number)
        if child is None:
            child = SubaccountState(self._address, number, history=self._history, lock=self._lock)
            child._source = self._source
            if self._has_snapshot:
                child._acct.load(None, (), None)  # a new child: nothing yet, equity 0
            self._children[number] = child
        return child

    # ---------------------------------------------------------------- writing

    def apply(self, msg: SubaccountMessage) -> None:
        """Apply one decoded ``v4_parent_subaccounts`` frame."""
        with self._lock:
            if msg.is_snapshot:
                sub = msg.subaccount
                if sub is not None and not isinstance(sub, ParentSubaccount):
                    raise TypeError("a subaccount snapshot goes to SubaccountState")
                self._load(sub, msg.orders, msg.block_height)
                return
            number = self._number if msg.subaccount_number is None else msg.subaccount_number
            self._child(number)._acct.update(msg)
            self._height(msg.block_height)

    def replace_from_rest(
        self,
        parent: Optional[ParentSubaccount],
        orders: Iterable[Order],
        block_height: Optional[int] = None,
    ) -> None:
        """Resync from REST (``get_parent_subaccount`` + orders): replaces like a snapshot."""
        with self._lock:
            self._load(parent, orders, block_height)

    def _load(
        self,
        parent: Optional[ParentSubaccount],
        orders: Iterable[Order],
        block_height: Optional[int],
    ) -> None:
        self._parent = parent
        self._has_snapshot = True
        by_child: Dict[int, List[Order]] = {}
        for order in orders:
            n = self._number if order.subaccount_number is None else order.subaccount_number
            by_child.setdefault(n, []).append(order)
        subs = {} if parent is None else {c.subaccount_number: c for c in parent.child_subaccounts}
        old = self._children
        self._children = {}
        for n in sorted(subs.keys() | by_child.keys()):
            child = old.get(n)  # keep the child objects users may hold
            if child is None:
                child = self._child(n)
            self._children[n] = child
            child._acct.load(subs.get(n), by_child.get(n, ()), block_height)
        self._block_height = None
        self._height(block_height)

    def _height(self, block_height: Optional[int]) -> None:
        if block_height is not None and (
            self._block_height is None or block_height > self._block_height
        ):
            self._block_height = block_height

    def set_price_source(
        self,
        source: Optional[PriceSource],
        margin_fraction: Optional[Callable[[str], Optional[Decimal]]] = None,
    ) -> None:
        """Compute every child's equity live (see :meth:`SubaccountState.set_price_source`)."""
        with self._lock:
            self._source = _as_source(source, margin_fraction)
            for child in self._children.values():
                child._source = self._source

    # ---------------------------------------------------------------- reading (any thread)

    @property
    def parent_subaccount_number(self) -> int:
        return self._number

    @property
    def children(self) -> Dict[int, SubaccountState]:
        """Child number -> live child view (a new dict)."""
        with self._lock:
            return dict(self._children)

    def child(self, number: int) -> Optional[SubaccountState]:
        with self._lock:
            return self._children.get(number)

    @property
    def block_height(self) -> Optional[int]:
        return self._block_height

    @property
    def has_snapshot(self) -> bool:
        return self._has_snapshot

    def _money(self) -> Tuple[Optional[Decimal], Optional[Decimal]]:
        """Sums over the children (the parent snapshot's values when it listed none)."""
        with self._lock:  # one consistent moment across children
            raws = [_Raw.of(c._acct) for c in self._children.values()]
            parent, has_snapshot, source = self._parent, self._has_snapshot, self._source
        if not has_snapshot:
            return None, None
        if not raws:
            return (_ZERO, _ZERO) if parent is None else (parent.equity, parent.free_collateral)
        money = [raw.money(source) for raw in raws]
        equity = sum((e or _ZERO for e, _ in money), _ZERO)
        free = sum((f or _ZERO for _, f in money), _ZERO)
        return equity, free

    @property
    def open_orders(self) -> Dict[str, Order]:
        """Open orders of every child, by order id."""
        with self._lock:
            out: Dict[str, Order] = {}
            for child in self._children.values():
                out.update(child._acct.orders)
            return out

    def __repr__(self) -> str:
        return (
            f"ParentSubaccountState({self._address}/{self._number}, "
            f"children={sorted(self._children)}, equity={self.equity})"
        )
