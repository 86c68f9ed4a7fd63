"""Local order book of one market, kept from ``v4_orderbook`` frames (docs/protocol.md §3.3).

Job: turn the stream of snapshots and absolute-size level updates into a sorted, uncrossed book
that any thread can read while one worker thread writes.

Rules it follows (each one is a bug another SDK shipped):

* A snapshot (``subscribed``, or a REST resync through :meth:`OrderBook.apply_snapshot`)
  **replaces** the book; it is never merged into the old levels, so no ghost level survives a
  reconnect. It also clears :attr:`OrderBook.stale`.
* An update carries the new **absolute** size of each level; ``0`` removes the level, and removing
  a level that is not there is a no-op. Levels of one frame are applied in wire order, so when the
  same price appears twice in a batch the later entry wins.
* Prices are matched by ``Decimal`` value (``"2396.10"`` is the level ``"2396.1"``), never by
  string and never through a float.
* The stream is **not** uncrossed by the server, so after every applied frame the book resolves
  ``best_bid >= best_ask`` locally with the configured policy (see :class:`OrderBook`).

Data structure and complexity (n = levels on one side, k = levels in a frame): each side is a
``dict`` price -> size (O(1) size change, membership and removal look-up) plus an ascending
``list`` of the prices maintained with :mod:`bisect`. Inserting or deleting a price is an
O(log n) search plus an O(n) ``memmove`` of the pointer array, which for the ≤ a few hundred
levels of a dYdX book is a few dozen nanoseconds; changing the size of an existing level never
touches the list. Best bid/ask are O(1) (the list's ends), ``depth(m)`` is O(m), ``copy()`` and
the full ``bids``/``asks`` lists are O(n). Applying a frame is O(k log n) plus the uncross loop,
which runs once per crossed pair it resolves. ``bench/book.py`` measures it against
``decode_message`` of the same frame.

Thread safety: one writer (the worker thread owning the subscription) and any number of readers.
Every mutation of a frame, including its uncrossing, happens under one lock, and every accessor
reads under the same lock, so a reader never sees half a batch. :meth:`OrderBook.copy` returns an
independent, consistent book for longer analysis.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..models import PriceLevel
from ..protocol._messages import OrderbookMessage

__all__ = ["UNCROSS_POLICIES", "BookDepth", "BookDiff", "OrderBook"]

logger = logging.getLogger("dydx_ws.state._orderbook")

UNCROSS_POLICIES = ("message_id", "size", "none")

_ZERO = Decimal(0)
_TWO = Decimal(2)
_NO_ID = -1  # message id of a level set without one (e.g. a REST snapshot): older than any frame


@dataclass(frozen=True)
class BookDepth:
    """The top levels of a book, best first on each side, read in one consistent view."""

    bids: List[PriceLevel]
    asks: List[PriceLevel]


@dataclass(frozen=True)
class BookDiff:
    """Prices at which two books differ (present on one side only, or with another size).

    Falsy when the books agree.
    """

    bids: List[Decimal] = field(default_factory=list)
    asks: List[Decimal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.bids or self.asks)


class _Side:
    """One side of the book: price -> size, price -> message id, and the ascending price list.

    Not thread-safe by itself: :class:`OrderBook` holds its lock around every call.
    """

    __slots__ = ("ids", "keys", "sizes")

    def __init__(self) -> None:
        self.sizes: Dict[Decimal, Decimal] = {}
        self.ids: Dict[Decimal, int] = {}
        self.keys: List[Decimal] = []  # ascending; best bid is keys[-1], best ask keys[0]

    def load(self, levels: Iterable[PriceLevel], message_id: int) -> None:
        """Replace the side with ``levels`` (later entries win, sizes <= 0 dropped)."""
        sizes: Dict[Decimal, Decimal] = {}
        for lvl in levels:
            if lvl.size > _ZERO:
                sizes[lvl.price] = lvl.size
            else:
                sizes.pop(lvl.price, None)
        self.sizes = sizes
        self.ids = dict.fromkeys(sizes, message_id)
        self.keys = sorted(sizes)

    def set(self, price: Decimal, size: Decimal, message_id: int) -> None:
        """Set the absolute size of a level; a size <= 0 removes it (absent: no-op)."""
        sizes = self.sizes
        if size > _ZERO:
            if price not in sizes:
                insort(self.keys, price)
            sizes[price] = size
            self.ids[price] = message_id
        elif price in sizes:
            self.remove(price)

    def remove(self, price: Decimal) -> None:
        del self.sizes[price]
        del self.ids[price]
        keys = self.keys
        del keys[bisect_left(keys, price)]

    def clone(self) -> _Side:
        other = _Side()
        other.sizes = self.sizes.copy()
        other.ids = self.ids.copy()
        other.keys = self.keys.copy()
        return other

    def levels(self, prices: Iterable[Decimal]) -> List[PriceLevel]:
        sizes = self.sizes
        return [PriceLevel(p, sizes[p]) for p in prices]


def _as_map(levels: Iterable[PriceLevel]) -> Dict[Decimal, Decimal]:
    """A level list as price -> size (later entries win, zero sizes dropped)."""
    out: Dict[Decimal, Decimal] = {}
    for lvl in levels:
        price = Decimal(lvl.price)
        if lvl.size > _ZERO:
            out[price] = Decimal(lvl.size)
        else:
            out.pop(price, None)
    return out


def _diff_side(mine: Dict[Decimal, Decimal], theirs: Dict[Decimal, Decimal]) -> List[Decimal]:
    return sorted(p for p in mine.keys() | theirs.keys() if mine.get(p) != theirs.get(p))


class OrderBook:
    """A local, sorted, optionally uncrossed order book for one market.

    ``uncross`` chooses how a crossed book (``best_bid >= best_ask``) is resolved after each
    applied frame; each resolution step increments :attr:`crossed`:

    * ``"message_id"`` (default; the official docs' recipe): every level remembers the
      ``message_id`` of the frame that last set it, a logical clock that only grows within one
      connection (docs/protocol.md §1.5). The level with the **older** id is removed. On equal ids
      (both set by the same frame) the smaller size is subtracted from the larger: the smaller
      level disappears, both when sizes are equal. Levels set without an id (REST resync) count
      as older than any frame.
    * ``"size"`` (NautilusTrader): recency is ignored; the bigger level is reduced by the smaller,
      the smaller removed, equal sizes remove both.
    * ``"none"``: the book is left crossed as received (:attr:`is_crossed` tells).

    ``stale`` is True until the first snapshot, set again by :meth:`mark_stale` (the client calls
    it on disconnect) and cleared by the next snapshot: a stale book still answers, but its
    levels may be outdated (or, before any snapshot, missing).
    """

    def __init__(self, ticker: str, *, uncross: str = "message_id") -> None:
        if uncross not in UNCROSS_POLICIES:
            raise ValueError(f"uncross must be one of {UNCROSS_POLICIES}, got {uncross!r}")
        self._ticker = ticker
        self._uncross = uncross
        self._lock = threading.Lock()
        self._bids = _Side()
        self._asks = _Side()
        self._stale = True  # no snapshot yet: nothing here can be trusted
        self._crossed = 0
        self._last_message_id: Optional[int] = None
        self._updated_at: Optional[float] = None

    # ---------------------------------------------------------------- writing (one thread)

    def apply(self, msg: OrderbookMessage) -> None:
        """Apply one decoded ``v4_orderbook`` frame: a snapshot replaces, an update sets levels."""
        if msg.is_snapshot:
            self.apply_snapshot(msg.bids, msg.asks, msg.message_id)
        else:
            self.apply_levels(msg.bids, msg.asks, msg.message_id)

    def apply_snapshot(
        self,
        bids: Iterable[PriceLevel],
        asks: Iterable[PriceLevel],
        message_id: Optional[int] = None,
    ) -> None:
        """Replace the whole book (a ``subscribed`` frame or a REST resync); clears ``stale``."""
        mid = _NO_ID if message_id is None else message_id
        with self._lock:
            self._bids.load(bids, mid)
            self._asks.load(asks, mid)
            self._finish_frame(message_id)
            self._stale = False

    def apply_levels(
        self,
        bids: Iterable[PriceLevel],
        asks: Iterable[PriceLevel],
        message_id: Optional[int] = None,
    ) -> None:
        """Set levels to their new absolute sizes, in order (size 0 removes; absent: no-op)."""
        with self._lock:
            self._set_levels(bids, asks, message_id)

    def _set_levels(
        self,
        bids: Iterable[PriceLevel],
        asks: Iterable[PriceLevel],
        message_id: Optional[int],
    ) -> None:
        mid = _NO_ID if message_id is None else message_id
        set_bid = self._bids.set
        for lvl in bids:
            set_bid(lvl.price, lvl.size, mid)
        set_ask = self._asks.set
        for lvl in asks:
            set_ask(lvl.price, lvl.size, mid)
        self._finish_frame(message_id)

    def _finish_frame(self, message_id: Optional[int]) -> None:
        if self._uncross != "none":
            self._resolve_crossing()
        if message_id is not None:
            self._last_message_id = message_id
        self._updated_at = time.time()

    def _resolve_crossing(self) -> None:
        bids, asks = self._bids, self._asks
        by_id = self._uncross == "message_id"
        while bids.keys and asks.keys:
            bid_px, ask_px = bids.keys[-1], asks.keys[0]
            if bid_px < ask_px:
                return
            self._crossed += 1
            if by_id:
                bid_id, ask_id = bids.ids[bid_px], asks.ids[ask_px]
                if bid_id != ask_id:
                    older = bids if bid_id < ask_id else asks
                    older.remove(bid_px if older is bids else ask_px)
                    continue
            bid_sz, ask_sz = bids.sizes[bid_px], asks.sizes[ask_px]
            if bid_sz > ask_sz:
                bids.sizes[bid_px] = bid_sz - ask_sz
                asks.remove(ask_px)
            elif ask_sz > bid_sz:
                asks.sizes[ask_px] = ask_sz - bid_sz
                bids.remove(bid_px)
            else:
                bids.remove(bid_px)
                asks.remove(ask_px)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s: uncrossed bid %s / ask %s", self._ticker, bid_px, ask_px)

    def mark_stale(self) -> None:
        """Flag the book as possibly outdated (disconnect); the next snapshot clears the flag."""
        with self._lock:
            self._stale = True

    # ---------------------------------------------------------------- reading (any thread)

    @property
    def ticker(self) -> str:
        return self._ticker

    @property
    def uncross(self) -> str:
        """The uncross policy: ``"message_id"``, ``"size"`` or ``"none"``."""
        return self._uncross

    @property
    def stale(self) -> bool:
        """True before the first snapshot, and after :meth:`mark_stale` until the next snapshot
        replaced the book."""
        return self._stale

    @property
    def crossed(self) -> int:
        """How many crossed bid/ask pairs were resolved locally so far."""
        return self._crossed

    @property
    def last_message_id(self) -> Optional[int]:
        """``message_id`` of the last applied frame that had one."""
        return self._last_message_id

    @property
    def updated_at(self) -> Optional[float]:
        """``time.time()`` when the last frame was applied (None before the first)."""
        return self._updated_at

    @property
    def best_bid(self) -> Optional[PriceLevel]:
        with self._lock:
            keys = self._bids.keys
            return PriceLevel(keys[-1], self._bids.sizes[keys[-1]]) if keys else None

    @property
    def best_ask(self) -> Optional[PriceLevel]:
        with self._lock:
            keys = self._asks.keys
            return PriceLevel(keys[0], self._asks.sizes[keys[0]]) if keys else None

    def top(self) -> Tuple[Optional[PriceLevel], Optional[PriceLevel]]:
        """``(best_bid, best_ask)`` read together (two property reads may straddle a frame)."""
        with self._lock:
            bk, ak = self._bids.keys, self._asks.keys
            bid = PriceLevel(bk[-1], self._bids.sizes[bk[-1]]) if bk else None
            ask = PriceLevel(ak[0], self._asks.sizes[ak[0]]) if ak else None
            return bid, ask

    @property
    def mid(self) -> Optional[Decimal]:
        """``(best_bid + best_ask) / 2``, None when a side is empty."""
        with self._lock:
            bk, ak = self._bids.keys, self._asks.keys
            return (bk[-1] + ak[0]) / _TWO if bk and ak else None

    @property
    def spread(self) -> Optional[Decimal]:
        """``best_ask - best_bid`` (negative or zero only when crossed), None if a side is empty."""
        with self._lock:
            bk, ak = self._bids.keys, self._asks.keys
            return ak[0] - bk[-1] if bk and ak else None

    @property
    def is_crossed(self) -> bool:
        """True when ``best_bid >= best_ask`` right now (possible only with ``uncross="none"``)."""
        with self._lock:
            bk, ak = self._bids.keys, self._asks.keys
            return bool(bk and ak and bk[-1] >= ak[0])

    def depth(self, n: int = 10) -> BookDepth:
        """The top ``n`` levels of each side, best first, from one consistent view."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            bk = self._bids.keys
            bid_prices = bk[: -n - 1 : -1] if n else []
            return BookDepth(
                bids=self._bids.levels(bid_prices),
                asks=self._asks.levels(self._asks.keys[:n]),
            )

    @property
    def bids(self) -> List[PriceLevel]:
        """All bid levels, best (highest) first."""
        with self._lock:
            return self._bids.levels(reversed(self._bids.keys))

    @property
    def asks(self) -> List[PriceLevel]:
        """All ask levels, best (lowest) first."""
        with self._lock:
            return self._asks.levels(self._asks.keys)

    def size_at(self, price: Any, side: Optional[str] = None) -> Decimal:
        """Size resting at ``price`` (taken as Decimal; 0 if none) on ``side`` (``"bid"`` or
        ``"ask"``), or on either side when None (both hold it only in a crossed book: bid first).
        """
        px = Decimal(price)
        if side not in (None, "bid", "ask"):
            raise ValueError(f"side must be 'bid', 'ask' or None, got {side!r}")
        with self._lock:
            if side == "bid":
                return self._bids.sizes.get(px, _ZERO)
            if side == "ask":
                return self._asks.sizes.get(px, _ZERO)
            return self._bids.sizes.get(px) or self._asks.sizes.get(px) or _ZERO

    def __len__(self) -> int:
        with self._lock:
            return len(self._bids.keys) + len(self._asks.keys)

    def copy(self) -> OrderBook:
        """An independent book with the same levels, ids, flags and counters (consistent)."""
        other = OrderBook(self._ticker, uncross=self._uncross)
        with self._lock:
            other._bids = self._bids.clone()
            other._asks = self._asks.clone()
            other._stale = self._stale
            other._crossed = self._crossed
            other._last_message_id = self._last_message_id
            other._updated_at = self._updated_at
        return other

    # ---------------------------------------------------------------- drift check against REST

    def diff(
        self,
        other_bids: Iterable[PriceLevel],
        other_asks: Iterable[PriceLevel],
        *,
        depth: Optional[int] = None,
    ) -> BookDiff:
        """Prices where this book and another (e.g. a REST snapshot) differ.

        With ``depth`` (REST returns at most 100 levels per side, while the streamed book may
        hold deeper ones), a side of the other book with fewer than ``depth`` levels is
        complete and is compared with this book's top ``depth`` levels. Otherwise it is cut to
        its top ``depth`` levels, and only this book's levels at or better than the worst price
        kept are compared: a level missing here must not pull a deeper, valid level into the
        comparison (nor a ghost level here push one out).
        """
        theirs_b, theirs_a = _as_map(other_bids), _as_map(other_asks)
        with self._lock:
            mine_b = dict(self._bids.sizes)
            mine_a = dict(self._asks.sizes)
        if depth is not None:
            if depth < 0:
                raise ValueError("depth must be >= 0")
            mine_b, theirs_b = _window(mine_b, theirs_b, depth, best_high=True)
            mine_a, theirs_a = _window(mine_a, theirs_a, depth, best_high=False)
        return BookDiff(bids=_diff_side(mine_b, theirs_b), asks=_diff_side(mine_a, theirs_a))

    def equals_levels(
        self,
        bids: Iterable[PriceLevel],
        asks: Iterable[PriceLevel],
        *,
        depth: Optional[int] = None,
    ) -> bool:
        """True when the book has exactly these levels (by Decimal value); see :meth:`diff`."""
        return not self.diff(bids, asks, depth=depth)

    # ---------------------------------------------------------------- display

    def __repr__(self) -> str:
        bid, ask = self.top()
        b = f"{bid.size}@{bid.price}" if bid else "-"
        a = f"{ask.size}@{ask.price}" if ask else "-"
        return (
            f"OrderBook({self._ticker!r}, bid={b}, ask={a}, levels={len(self)}, "
            f"stale={self._stale})"
        )

    def _repr_html_(self) -> str:
        d = self.depth(10)
        rows = []
        for i in range(max(len(d.bids), len(d.asks))):
            b = d.bids[i] if i < len(d.bids) else None
            a = d.asks[i] if i < len(d.asks) else None
            cells = (
                b.size if b else "",
                b.price if b else "",
                a.price if a else "",
                a.size if a else "",
            )
            tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            rows.append(f"<tr>{tds}</tr>")
        stale = " (stale)" if self._stale else ""
        return (
            f"<table><caption>{html.escape(self._ticker)}{stale}</caption>"
            "<thead><tr><th>bid size</th><th>bid</th><th>ask</th><th>ask size</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def _window(
    mine: Dict[Decimal, Decimal], theirs: Dict[Decimal, Decimal], n: int, *, best_high: bool
) -> Tuple[Dict[Decimal, Decimal], Dict[Decimal, Decimal]]:
    """One side of both books, restricted to what a depth-``n`` comparison covers (see
    :meth:`OrderBook.diff`)."""
    their_prices = sorted(theirs, reverse=best_high)
    if len(their_prices) < n:  # their side is complete
        return {p: mine[p] for p in sorted(mine, reverse=best_high)[:n]}, theirs
    if n == 0:
        return {}, {}
    kept = their_prices[:n]  # possibly cut at n: compare only the price range it covers
    their_top = {p: theirs[p] for p in kept}
    bound = kept[-1]
    if best_high:
        return {p: s for p, s in mine.items() if p >= bound}, their_top
    return {p: s for p, s in mine.items() if p <= bound}, their_top
