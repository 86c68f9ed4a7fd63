"""The crowd: the simulated market participants who quote, cancel and trade on every market.

Moves each oracle price, places and cancels crowd orders around it, matches takers against the
book (demo orders included, so the demo account gets fills) and keeps each side between
``book_levels`` and ``max_book_levels`` levels.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from .account import DemoOrder
from .book import ASKS, BIDS, LevelChange, RestingOrder
from .jsutil import iso
from .sim_base import MarketState, Publication, SimulatorBase, trade_update


class CrowdSimulation(SimulatorBase):
    """The crowd's part of :class:`~dydx_ws.emulator.simulator.MarketSimulator`."""

    def _mid(self, state: MarketState) -> Optional[Decimal]:
        bid, ask = state.book.best(BIDS), state.book.best(ASKS)
        if bid is None or ask is None:
            return None
        return (state.spec.price_dec(bid) + state.spec.price_dec(ask)) / 2

    def _move_oracle(self, state: MarketState) -> None:
        move = round(self.rng.gauss(0, 2.0))
        mid = self._mid(state)
        if mid is not None:  # gently pull the oracle towards the book
            mid_ticks = int(mid.scaleb(-state.spec.tick_exp))
            move += (mid_ticks - state.oracle_ticks) // 20
        state.oracle_changed = move != 0
        state.oracle_ticks = max(state.oracle_ticks + move, 10)

    def _place(
        self,
        state: MarketState,
        side: str,
        price: int,
        size: int,
        owner: Optional[int] = None,
        order_id: Optional[str] = None,
    ) -> LevelChange:
        order = RestingOrder(order_id or self._order_id(), side, price, size, owner)
        return state.book.add(order)

    def _crowd_price(self, state: MarketState, side: str, distance: int) -> Optional[int]:
        book = state.book
        if side == BIDS:
            price = state.oracle_ticks - distance
            best_ask = book.best(ASKS)
            if best_ask is not None and price >= best_ask:
                price = best_ask - 1 - distance % 3
        else:
            price = state.oracle_ticks + distance
            best_bid = book.best(BIDS)
            if best_bid is not None and price <= best_bid:
                price = best_bid + 1 + distance % 3
        return price if price > 0 else None

    def _crowd(
        self,
        state: MarketState,
        activity: int,
        out: List[Publication],
        trades: List[Dict[str, Any]],
        always_take: bool = False,
    ) -> None:
        """One block of quoting, cancelling (``activity // 2`` to ``3 * activity // 2``
        actions) and, with probability 0.6 (or ``always_take``), one taker."""
        rng = self.rng
        book = state.book
        for _ in range(rng.randint(max(1, activity // 2), activity * 3 // 2)):
            roll = rng.random()
            side = BIDS if rng.random() < 0.5 else ASKS
            if roll < 0.55:
                price = self._crowd_price(state, side, 1 + int(rng.expovariate(0.1)))
                if price is not None:
                    size = rng.randint(1, 40) * rng.choice((1, 1, 1, 5, 25))
                    out.append(self._level_pub(state, self._place(state, side, price, size)))
            elif roll < 0.9:
                levels = book.sides[side]
                if not levels:
                    continue
                if rng.random() < 0.5:  # stale quotes on the wrong side of the oracle go first
                    price = max(levels) if side == BIDS else min(levels)
                    through = (
                        price > state.oracle_ticks if side == BIDS else price < state.oracle_ticks
                    )
                    if not through:
                        price = rng.choice(list(levels))
                else:
                    price = rng.choice(list(levels))
                crowd = [o for o in levels[price].orders.values() if o.owner is None]
                if not crowd:
                    continue
                order = rng.choice(crowd)
                amount = order.size if rng.random() < 0.7 else rng.randint(1, order.size)
                out.append(self._level_pub(state, book.reduce(order.order_id, amount)))
        if always_take or rng.random() < 0.6:
            best_bid, best_ask = book.best(BIDS), book.best(ASKS)
            if best_ask is not None and best_ask < state.oracle_ticks:
                taker_side = "BUY"
            elif best_bid is not None and best_bid > state.oracle_ticks:
                taker_side = "SELL"
            else:
                taker_side = "BUY" if rng.random() < 0.5 else "SELL"
            size = rng.randint(1, 60) * rng.choice((1, 1, 3, 10))
            self._take(state, taker_side, size, 3, None, out, trades)

    def _take(
        self,
        state: MarketState,
        taker_side: str,
        size: int,
        max_levels: int,
        taker: Optional[Tuple[int, DemoOrder]],
        out: List[Publication],
        trades: List[Dict[str, Any]],
    ) -> int:
        """Match a taker against the opposite side; returns the filled steps."""
        book = state.book
        spec = state.spec
        opposite = ASKS if taker_side == "BUY" else BIDS
        remaining = size
        levels_hit = 0
        while remaining > 0 and levels_hit < max_levels:
            price = book.best(opposite)
            if price is None:
                break
            levels_hit += 1
            for order in list(book.sides[opposite][price].orders.values()):
                if remaining == 0:
                    break
                if taker is not None and order.owner == taker[0]:
                    remaining = 0  # self-trade prevention: stop matching
                    break
                fill = min(remaining, order.size)
                out.append(self._level_pub(state, book.reduce(order.order_id, fill)))
                remaining -= fill
                self._event_index += 1
                event_id = f"{self.height:08x}{2:08x}{self._event_index:08x}"
                rest_trade = {
                    "id": event_id,
                    "side": taker_side,
                    "size": spec.size(fill),
                    "price": spec.price(price),
                    "type": "LIMIT",
                    "createdAt": iso(self.time),
                    "createdAtHeight": str(self.height),
                }
                state.trades.append((self.height, rest_trade))
                trades.append(trade_update(rest_trade))
                price_d, size_d = spec.price_dec(price), spec.size_dec(fill)
                state.last_price = price_d
                state.volume_24h += size_d * price_d
                state.trades_24h += 1
                state.open_interest = max(
                    Decimal(0), state.open_interest + size_d * self.rng.choice((-1, 1))
                )
                tx_hash = self._tx_hash()
                if order.owner is not None:
                    maker_side = "SELL" if taker_side == "BUY" else "BUY"
                    self._demo_fill(
                        order.owner,
                        order.order_id,
                        state,
                        maker_side,
                        price_d,
                        size_d,
                        "MAKER",
                        event_id,
                        tx_hash,
                    )
                if taker is not None:
                    self._demo_fill(
                        taker[0],
                        taker[1].order_id,
                        state,
                        taker_side,
                        price_d,
                        size_d,
                        "TAKER",
                        event_id,
                        tx_hash,
                    )
        return size - remaining

    def _replenish(self, state: MarketState, out: List[Publication]) -> None:
        """Keep between ``book_levels`` and ``max_book_levels`` levels per side."""
        book = state.book
        rng = self.rng
        for side in (BIDS, ASKS):
            levels = book.sides[side]
            while len(levels) < self.config.book_levels:
                if levels:
                    deepest = min(levels) if side == BIDS else max(levels)
                    gap = 1 + rng.randint(0, 2)
                    price = deepest - gap if side == BIDS else deepest + gap
                else:
                    found = self._crowd_price(state, side, 1 + rng.randint(0, 3))
                    if found is None:
                        break
                    price = found
                if price <= 0:
                    break
                size = rng.randint(1, 40) * rng.choice((1, 5, 25))
                out.append(self._level_pub(state, self._place(state, side, price, size)))
            while len(levels) > self.config.max_book_levels:
                deepest = min(levels) if side == BIDS else max(levels)
                crowd = [o for o in levels[deepest].orders.values() if o.owner is None]
                if not crowd:
                    break
                for order in crowd:
                    out.append(self._level_pub(state, book.remove(order.order_id)))
