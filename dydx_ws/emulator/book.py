"""An order-level order book for one market, plus the Redis-like level view that comlink serves.

The matching state is a set of resting orders per price level.  Each change to a level yields the
level's new *absolute* aggregated size, which is what vulcan publishes.  "Phantom" levels model
stale crossed Redis entries (fault injection): they are visible to the stream but never match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

BIDS = "bids"
ASKS = "asks"


@dataclass
class RestingOrder:
    """One resting maker order; ``owner`` is a demo subaccount number or None for the crowd."""

    order_id: str
    side: str
    price: int
    size: int
    owner: Optional[int] = None


@dataclass
class Level:
    orders: Dict[str, RestingOrder] = field(default_factory=dict)
    total: int = 0
    updated: int = 0


@dataclass
class Phantom:
    size: int
    created_at: float


LevelChange = Tuple[str, int, int]  # (side, price ticks, new absolute size in steps)


class OrderBook:
    """Price levels keyed by integer ticks; sizes are integer steps."""

    def __init__(self) -> None:
        self.sides: Dict[str, Dict[int, Level]] = {BIDS: {}, ASKS: {}}
        self.phantoms: Dict[str, Dict[int, Phantom]] = {BIDS: {}, ASKS: {}}
        self.orders: Dict[str, RestingOrder] = {}
        self._clock = 0

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def best(self, side: str) -> Optional[int]:
        levels = self.sides[side]
        if not levels:
            return None
        return max(levels) if side == BIDS else min(levels)

    def level_count(self, side: str) -> int:
        return len(self.sides[side])

    def add(self, order: RestingOrder) -> LevelChange:
        level = self.sides[order.side].get(order.price)
        if level is None:
            level = self.sides[order.side][order.price] = Level()
        level.orders[order.order_id] = order
        level.total += order.size
        level.updated = self._tick()
        self.orders[order.order_id] = order
        self.phantoms[order.side].pop(order.price, None)
        return (order.side, order.price, level.total)

    def reduce(self, order_id: str, amount: int) -> LevelChange:
        """Take ``amount`` steps off a resting order (a fill or a partial cancel)."""
        order = self.orders[order_id]
        level = self.sides[order.side][order.price]
        amount = min(amount, order.size)
        order.size -= amount
        level.total -= amount
        level.updated = self._tick()
        if order.size == 0:
            del level.orders[order_id]
            del self.orders[order_id]
        if level.total == 0:
            del self.sides[order.side][order.price]
        self.phantoms[order.side].pop(order.price, None)
        return (order.side, order.price, level.total)

    def remove(self, order_id: str) -> LevelChange:
        return self.reduce(order_id, self.orders[order_id].size)

    def drop_level(self, side: str, price: int) -> List[RestingOrder]:
        """Delete a whole level without a level change (a silent server-side removal)."""
        level = self.sides[side].pop(price)
        for order_id in level.orders:
            del self.orders[order_id]
        return list(level.orders.values())

    def add_phantom(self, side: str, price: int, size: int, now: float) -> None:
        self.phantoms[side][price] = Phantom(size, now)

    def expire_phantoms(self, older_than: float) -> List[Tuple[str, int]]:
        gone: List[Tuple[str, int]] = []
        for side, phantoms in self.phantoms.items():
            for price in [p for p, ph in phantoms.items() if ph.created_at <= older_than]:
                del phantoms[price]
                gone.append((side, price))
        return gone

    def view(self, limit: int) -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]:
        """The comlink view: sorted, uncrossed as the server does, capped at ``limit`` per side.

        Phantom levels count as the oldest, so uncrossing drops them before any real level.
        """
        merged: Dict[str, List[Tuple[int, int, int]]] = {}
        for side in (BIDS, ASKS):
            rows = [(price, lvl.total, lvl.updated) for price, lvl in self.sides[side].items()]
            rows.extend((price, ph.size, -1) for price, ph in self.phantoms[side].items())
            rows.sort(key=lambda r: r[0], reverse=(side == BIDS))
            merged[side] = rows
        bids, asks = merged[BIDS], merged[ASKS]
        bi = ai = 0
        while bi < len(bids) and ai < len(asks) and bids[bi][0] >= asks[ai][0]:
            bid, ask = bids[bi], asks[ai]
            if bid[2] != ask[2]:
                drop_bid = bid[2] < ask[2]
            elif bid[1] != ask[1]:
                drop_bid = bid[1] < ask[1]
            else:
                drop_bid = True
            if drop_bid:
                bi += 1
            else:
                ai += 1
        return (
            [(p, s) for p, s, _ in bids[bi : bi + limit]],
            [(p, s) for p, s, _ in asks[ai : ai + limit]],
        )
