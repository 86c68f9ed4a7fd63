"""The seeded, deterministic market and account simulator behind both the stream and REST.

``MarketSimulator.step(now)`` advances one block and returns the websocket publications it caused
(orderbook level updates, trades, candles, oracle prices, trading diffs, subaccount messages,
block height) in the order the real producers emit them.  The read methods (``orderbook_view``,
``trades``, ``candles``, ``subaccount`` …) are the comlink truth the stream builds.  For a given
seed and the same ``now`` values the output is identical.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from .account import DemoOrder, Subaccount, stable_uuid
from .bech32 import demo_address
from .book import ASKS, BIDS, LevelChange, OrderBook, RestingOrder
from .candles import CandleSeries
from .config import EmulatorConfig
from .jsutil import dec_str, iso
from .markets import MarketSpec, make_specs

__all__ = ["MarketSimulator", "MarketState", "Publication", "Subaccount"]

log = logging.getLogger("dydx_ws.emulator.simulator")

START_HEIGHT = 12_000_000
WARMUP_SPACING = 3.0
MAX_TRADES = 5000
DEMO_SUBACCOUNTS = (0, 128)
TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")


@dataclass
class Publication:
    """One message a producer puts on a websocket topic (the socks side adds the envelope)."""

    channel: str
    id: str
    contents: Dict[str, Any]
    subaccount_number: Optional[int] = None


def trade_update(rest_trade: Dict[str, Any]) -> Dict[str, Any]:
    """The websocket ``TradeContent`` of a REST trade: ender's key order, no createdAtHeight."""
    keys = ("id", "size", "price", "side", "createdAt", "type")
    return {key: rest_trade[key] for key in keys}


@dataclass
class MarketState:
    spec: MarketSpec
    book: OrderBook
    oracle_ticks: int
    last_price: Decimal
    candles: CandleSeries
    trades: Deque[Tuple[int, Dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=MAX_TRADES)
    )
    volume_24h: Decimal = Decimal(0)
    trades_24h: int = 0
    open_interest: Decimal = Decimal(0)
    next_funding_rate: Decimal = Decimal(0)
    sent_trading: Dict[str, Any] = field(default_factory=dict)
    oracle_changed: bool = True


@dataclass
class _Pending:
    """Per-subaccount changes collected during a block and published at its end."""

    positions: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    asset: bool = False
    orders: Dict[str, DemoOrder] = field(default_factory=dict)
    fills: List[Dict[str, Any]] = field(default_factory=list)
    transfers: List[Dict[str, Any]] = field(default_factory=list)


class MarketSimulator:
    """All simulated state; not thread-safe (the emulator drives it from its event loop only)."""

    def __init__(self, config: EmulatorConfig, base_time: float) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.specs = make_specs(config.markets)
        self.demo_address = demo_address(config.seed)
        self.height = START_HEIGHT - config.warmup_blocks
        self.time = base_time - config.warmup_blocks * WARMUP_SPACING
        self.markets: Dict[str, MarketState] = {}
        for ticker, spec in self.specs.items():
            self.markets[ticker] = MarketState(
                spec=spec,
                book=OrderBook(),
                oracle_ticks=spec.initial_price_ticks,
                last_price=spec.price_dec(spec.initial_price_ticks),
                candles=CandleSeries(ticker),
                open_interest=spec.size_dec(5000),
            )
        self.subaccounts: Dict[int, Subaccount] = {
            n: Subaccount(self.demo_address, n, Decimal(10000 if n == 0 else 2500), self.height)
            for n in DEMO_SUBACCOUNTS
        }
        self._next_order = 0
        self._event_index = 0
        self._client_id = 1000
        self._pending: Dict[int, _Pending] = {}
        self._last_trading_time = self.time
        self.crossed_levels = config.crossed_levels
        self.silent_deletions = config.silent_deletions
        for state in self.markets.values():
            self._replenish(state, [])
        for _ in range(config.warmup_blocks):
            self.step(self.time + WARMUP_SPACING)

    # ----- helpers ----------------------------------------------------------------------------

    def _order_id(self) -> str:
        self._next_order += 1
        return f"o{self._next_order}"

    def _level_pub(self, state: MarketState, change: LevelChange) -> Publication:
        side, price, size = change
        spec = state.spec
        return Publication(
            "v4_orderbook", spec.ticker, {side: [[spec.price(price), spec.size(size)]]}
        )

    def oracle(self) -> Dict[str, Decimal]:
        return {t: s.spec.price_dec(s.oracle_ticks) for t, s in self.markets.items()}

    def imf(self) -> Dict[str, Decimal]:
        return {t: Decimal(s.spec.initial_margin_fraction) for t, s in self.markets.items()}

    def _pending_for(self, number: int) -> _Pending:
        pending = self._pending.get(number)
        if pending is None:
            pending = self._pending[number] = _Pending()
        return pending

    def _tx_hash(self) -> str:
        return f"{self.rng.getrandbits(256):064X}"

    # ----- one block --------------------------------------------------------------------------

    def step(self, now: float) -> List[Publication]:
        """Produce the next block at wall/simulated time ``now`` (epoch seconds)."""
        self.height += 1
        self.time = max(now, self.time + 0.001)
        self._event_index = 0
        self._pending = {}
        out: List[Publication] = []
        block_trades: Dict[str, List[Dict[str, Any]]] = {t: [] for t in self.markets}
        for state in self.markets.values():
            self._move_oracle(state)
        for state in self.markets.values():
            self._crowd(state, out, block_trades[state.spec.ticker])
        self._demo(out, block_trades)
        for state in self.markets.values():
            self._replenish(state, out)
            self._faults(state, out)
        for ticker, trades in block_trades.items():
            if trades:
                out.append(Publication("v4_trades", ticker, {"trades": trades}))
        self._flush_subaccounts(out)
        for ticker, state in self.markets.items():
            prints = [(Decimal(t["price"]), Decimal(t["size"])) for t in block_trades[ticker]]
            mid = self._mid(state)
            for candle in state.candles.on_block(
                self.time, prints, state.last_price, mid, state.open_interest
            ):
                out.append(
                    Publication("v4_candles", f"{ticker}/{candle.resolution}", candle.to_json())
                )
        oracle_prices = {
            ticker: {
                "oraclePrice": state.spec.price(state.oracle_ticks),
                "effectiveAt": iso(self.time),
                "effectiveAtHeight": str(self.height),
                "marketId": state.spec.clob_pair_id,
            }
            for ticker, state in self.markets.items()
            if state.oracle_changed
        }
        if oracle_prices:
            out.append(Publication("v4_markets", "v4_markets", {"oraclePrices": oracle_prices}))
        if self.time - self._last_trading_time >= self.config.trading_interval:
            self._last_trading_time = self.time
            diff = self._trading_diff()
            if diff:
                out.append(Publication("v4_markets", "v4_markets", {"trading": diff}))
        out.append(
            Publication(
                "v4_block_height",
                "v4_block_height",
                {"blockHeight": str(self.height), "time": iso(self.time)},
            )
        )
        return out

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

    # ----- the crowd --------------------------------------------------------------------------

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
        self, state: MarketState, out: List[Publication], trades: List[Dict[str, Any]]
    ) -> None:
        rng = self.rng
        book = state.book
        for _ in range(
            rng.randint(max(1, self.config.activity // 2), self.config.activity * 3 // 2)
        ):
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
        if rng.random() < 0.6:
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

    # ----- faults -----------------------------------------------------------------------------

    def _faults(self, state: MarketState, out: List[Publication]) -> None:
        book = state.book
        for side, price in book.expire_phantoms(self.time - self.config.stale_level_seconds):
            log.debug(
                "silently removed stale crossed %s level %s in %s", side, price, state.spec.ticker
            )
        if self.crossed_levels and self.rng.random() < self.config.fault_probability:
            out.append(self.inject_crossed_level(state.spec.ticker)[0])
        if self.silent_deletions and self.rng.random() < self.config.fault_probability:
            self.silent_delete_level(state.spec.ticker)

    def inject_crossed_level(
        self, ticker: str, side: Optional[str] = None
    ) -> Tuple[Publication, Dict[str, Any]]:
        """Publish a stale level on the wrong side of the book (it never shows in REST, which
        uncrosses it away, and it is silently deleted after ``stale_level_seconds``)."""
        state = self.markets[ticker]
        book = state.book
        side = side or (BIDS if self.rng.random() < 0.5 else ASKS)
        if side not in (BIDS, ASKS):
            raise ValueError("side must be 'bids' or 'asks'")
        other = book.best(ASKS if side == BIDS else BIDS)
        if other is None:
            raise RuntimeError("empty book")
        offset = self.rng.randint(0, 2)
        price = other + offset if side == BIDS else max(other - offset, 1)
        size = self.rng.randint(1, 40)
        book.add_phantom(side, price, size, self.time)
        pub = self._level_pub(state, (side, price, size))
        info = {
            "ticker": ticker,
            "side": side,
            "price": state.spec.price(price),
            "size": state.spec.size(size),
        }
        return pub, info

    def silent_delete_level(
        self, ticker: str, side: Optional[str] = None
    ) -> Optional[Dict[str, Any]]:
        """Delete a (crowd-only) level from the book without any websocket message."""
        state = self.markets[ticker]
        side = side or (BIDS if self.rng.random() < 0.5 else ASKS)
        levels = state.book.sides[side]
        candidates = [
            p for p, lvl in levels.items() if all(o.owner is None for o in lvl.orders.values())
        ]
        if not candidates:
            return None
        candidates.sort(reverse=(side == BIDS))
        price = self.rng.choice(candidates[: max(5, len(candidates) // 3)])
        size = levels[price].total
        state.book.drop_level(side, price)
        return {
            "ticker": ticker,
            "side": side,
            "price": state.spec.price(price),
            "size": state.spec.size(size),
        }

    # ----- the demo account -------------------------------------------------------------------

    def _demo(self, out: List[Publication], block_trades: Dict[str, List[Dict[str, Any]]]) -> None:
        rng = self.rng
        tickers = list(self.markets)
        for sub in self.subaccounts.values():
            open_orders = [o for o in sub.orders.values() if o.status == "OPEN"]
            for order in open_orders:
                if rng.random() < 0.04:
                    self._demo_cancel(sub, order, out)
            if rng.random() < 0.15 and len(open_orders) < 4:
                self._demo_place(sub, self.markets[rng.choice(tickers)], out)
            if rng.random() < 0.05:
                ticker = rng.choice(tickers)
                self._demo_take(sub, self.markets[ticker], out, block_trades[ticker])
        if rng.random() < 0.03:
            self._demo_transfer()
        self._prune_orders()

    def _vulcan_order(self, sub: Subaccount, order: DemoOrder, out: List[Publication]) -> None:
        contents = {"orders": [sub.ws_order(order)], "blockHeight": str(self.height)}
        self._publish_sub(sub.number, contents, out)

    def _new_order(
        self,
        sub: Subaccount,
        state: MarketState,
        buy: bool,
        steps: int,
        price_ticks: int,
        **terms: Any,
    ) -> DemoOrder:
        """A new demo order of ``sub`` (registered with it), stamped with the current block."""
        self._client_id += 1
        order = DemoOrder(
            order_id=stable_uuid("order", sub.address, sub.number, self._client_id),
            client_id=self._client_id,
            subaccount_number=sub.number,
            ticker=state.spec.ticker,
            clob_pair_id=state.spec.clob_pair_id,
            side="BUY" if buy else "SELL",
            size=state.spec.size_dec(steps),
            price=state.spec.price_dec(price_ticks),
            created_height=self.height,
            created_at=self.time,
            updated_at=self.time,
            updated_height=self.height,
            **terms,
        )
        sub.orders[order.order_id] = order
        return order

    def _demo_place(self, sub: Subaccount, state: MarketState, out: List[Publication]) -> None:
        rng = self.rng
        book = state.book
        buy = rng.random() < 0.5
        side = BIDS if buy else ASKS
        best = book.best(side)
        if best is None:
            return
        price = best - rng.randint(0, 2) if buy else best + rng.randint(0, 2)
        if price <= 0:
            return
        steps = rng.randint(1, 10)
        order = self._new_order(
            sub,
            state,
            buy,
            steps,
            price,
            time_in_force="GTT",
            order_flags="64",
            good_til_block_time=iso(self.time + 3600),
        )
        out.append(
            self._level_pub(
                state, self._place(state, side, price, steps, sub.number, order.order_id)
            )
        )
        self._vulcan_order(sub, order, out)

    def _demo_cancel(self, sub: Subaccount, order: DemoOrder, out: List[Publication]) -> None:
        state = self.markets[order.ticker]
        if order.order_id in state.book.orders:
            out.append(self._level_pub(state, state.book.remove(order.order_id)))
        order.status = "CANCELED"
        order.updated_at, order.updated_height = self.time, self.height
        self._vulcan_order(sub, order, out)

    def _demo_take(
        self,
        sub: Subaccount,
        state: MarketState,
        out: List[Publication],
        trades: List[Dict[str, Any]],
    ) -> None:
        rng = self.rng
        buy = rng.random() < 0.5
        best = state.book.best(ASKS if buy else BIDS)
        if best is None:
            return
        steps = rng.randint(1, 8)
        order = self._new_order(
            sub,
            state,
            buy,
            steps,
            best + 5 if buy else max(best - 5, 1),
            time_in_force="IOC",
            order_flags="0",
            good_til_block=self.height + 20,
        )
        filled = self._take(state, order.side, steps, 2, (sub.number, order), out, trades)
        if filled < steps:
            order.status = "BEST_EFFORT_CANCELED"
            order.removal_reason = "ORDER_REMOVAL_REASON_IMMEDIATE_OR_CANCEL_WOULD_REST_ON_BOOK"
        self._pending_for(sub.number).orders[order.order_id] = order

    def _demo_fill(
        self,
        number: int,
        order_id: str,
        state: MarketState,
        side: str,
        price: Decimal,
        size: Decimal,
        liquidity: str,
        event_id: str,
        tx_hash: str,
    ) -> None:
        sub = self.subaccounts[number]
        order = sub.orders[order_id]
        fee = price * size * (TAKER_FEE if liquidity == "TAKER" else MAKER_FEE)
        changed = sub.apply_fill(state.spec.ticker, side, price, size, fee, self.time, self.height)
        order.total_filled += size
        if order.total_filled >= order.size:
            order.status = "FILLED"
        order.updated_at, order.updated_height = self.time, self.height
        pending = self._pending_for(number)
        pending.orders[order_id] = order
        pending.asset = True
        oracle = state.spec.price_dec(state.oracle_ticks)
        for pos in changed:
            pending.positions[pos.position_id] = sub.ws_position(pos, oracle)
        pending.fills.append(
            {
                "id": stable_uuid("fill", event_id, liquidity),
                "subaccountId": sub.subaccount_id,
                "side": side,
                "liquidity": liquidity,
                "type": "LIMIT",
                "clobPairId": str(state.spec.clob_pair_id),
                "size": dec_str(size),
                "price": dec_str(price),
                "quoteAmount": dec_str(price * size),
                "eventId": event_id,
                "transactionHash": tx_hash,
                "createdAt": iso(self.time),
                "createdAtHeight": str(self.height),
                "orderId": order_id,
                "clientMetadata": "0",
                "fee": dec_str(fee),
                "affiliateRevShare": "0",
                "ticker": state.spec.ticker,
            }
        )

    def _demo_transfer(self) -> None:
        rng = self.rng
        address = self.demo_address
        amount = Decimal(rng.randint(5, 100))
        tx_hash = self._tx_hash()
        base = {"symbol": "USDC", "size": dec_str(amount)}
        tail = {
            "transactionHash": tx_hash,
            "createdAt": iso(self.time),
            "createdAtHeight": str(self.height),
        }
        if rng.random() < 0.3:
            number = rng.choice(DEMO_SUBACCOUNTS)
            self.subaccounts[number].usdc += amount
            self.subaccounts[number].updated_height = self.height
            pending = self._pending_for(number)
            pending.asset = True
            pending.transfers.append(
                {
                    "sender": {"address": address},
                    "recipient": {"address": address, "subaccountNumber": number},
                    **base,
                    "type": "DEPOSIT",
                    **tail,
                }
            )
            return
        sender, recipient = DEMO_SUBACCOUNTS if rng.random() < 0.5 else DEMO_SUBACCOUNTS[::-1]
        if self.subaccounts[sender].usdc < amount:
            return
        parties = {
            "sender": {"address": address, "subaccountNumber": sender},
            "recipient": {"address": address, "subaccountNumber": recipient},
        }
        for number, kind, delta in (
            (sender, "TRANSFER_OUT", -amount),
            (recipient, "TRANSFER_IN", amount),
        ):
            self.subaccounts[number].usdc += delta
            self.subaccounts[number].updated_height = self.height
            pending = self._pending_for(number)
            pending.asset = True
            pending.transfers.append({**parties, **base, "type": kind, **tail})

    def _prune_orders(self) -> None:
        for sub in self.subaccounts.values():
            closed = [o for o in sub.orders.values() if o.status not in ("OPEN", "UNTRIGGERED")]
            for order in closed[:-200]:
                del sub.orders[order.order_id]

    def _publish_sub(self, number: int, contents: Dict[str, Any], out: List[Publication]) -> None:
        address = self.demo_address
        out.append(Publication("v4_subaccounts", f"{address}/{number}", contents))
        parent = number % 128
        parent_contents = contents
        transfers = contents.get("transfers")
        if transfers is not None:
            sender = transfers["sender"].get("subaccountNumber")
            recipient = transfers["recipient"].get("subaccountNumber")
            same_owner = transfers["sender"]["address"] == transfers["recipient"]["address"]
            if (
                same_owner
                and sender is not None
                and recipient is not None
                and sender % 128 == parent
                and recipient % 128 == parent
            ):
                parent_contents = {k: v for k, v in contents.items() if k != "transfers"}
        out.append(
            Publication(
                "v4_parent_subaccounts",
                f"{address}/{parent}",
                parent_contents,
                subaccount_number=number,
            )
        )

    def _flush_subaccounts(self, out: List[Publication]) -> None:
        for number in sorted(self._pending):
            pending = self._pending[number]
            sub = self.subaccounts[number]
            contents: Dict[str, Any] = {}
            if pending.positions:
                contents["perpetualPositions"] = list(pending.positions.values())
            if pending.asset:
                contents["assetPositions"] = [sub.ws_asset()]
            if pending.orders:
                contents["orders"] = [sub.ws_order(o) for o in pending.orders.values()]
            if pending.fills:
                contents["fills"] = pending.fills
            transfers = pending.transfers
            if transfers:
                contents["transfers"] = transfers[0]
            contents["blockHeight"] = str(self.height)
            self._publish_sub(number, contents, out)
            for extra in transfers[1:]:
                self._publish_sub(
                    number, {"transfers": extra, "blockHeight": str(self.height)}, out
                )
        self._pending = {}

    # ----- markets --------------------------------------------------------------------------

    @staticmethod
    def _trading_fields(state: MarketState) -> Dict[str, Any]:
        """The fields roundtable's market updater diffs (also part of the REST market object)."""
        spec = state.spec
        return {
            "priceChange24H": dec_str(
                spec.price_dec(state.oracle_ticks) - spec.price_dec(spec.initial_price_ticks)
            ),
            "volume24H": dec_str(state.volume_24h),
            "trades24H": state.trades_24h,
            "nextFundingRate": dec_str(state.next_funding_rate),
            "openInterest": dec_str(state.open_interest),
            "baseOpenInterest": dec_str(state.open_interest),
        }

    def _trading_diff(self) -> Dict[str, Any]:
        """Roll each market's funding rate, then publish only the fields that changed."""
        diff: Dict[str, Any] = {}
        for ticker, state in self.markets.items():
            state.next_funding_rate = Decimal(self.rng.randint(-50, 50)).scaleb(-8)
            fields = self._trading_fields(state)
            changed = {k: v for k, v in fields.items() if state.sent_trading.get(k) != v}
            state.sent_trading = fields
            if changed:
                diff[ticker] = {"id": str(state.spec.clob_pair_id), **changed}
        return diff

    # ----- comlink reads ----------------------------------------------------------------------

    def market_object(self, ticker: str) -> Dict[str, Any]:
        """comlink's ``PerpetualMarketResponseObject`` in field order (docs/protocol.md §5.1)."""
        state = self.markets[ticker]
        spec = state.spec
        trading = self._trading_fields(state)
        return {
            "clobPairId": str(spec.clob_pair_id),
            "ticker": ticker,
            "status": "ACTIVE",
            "oraclePrice": spec.price(state.oracle_ticks),
            "priceChange24H": trading["priceChange24H"],
            "volume24H": trading["volume24H"],
            "trades24H": trading["trades24H"],
            "nextFundingRate": trading["nextFundingRate"],
            "initialMarginFraction": spec.initial_margin_fraction,
            "maintenanceMarginFraction": spec.maintenance_margin_fraction,
            "openInterest": trading["openInterest"],
            "atomicResolution": spec.atomic_resolution,
            "quantumConversionExponent": spec.quantum_conversion_exponent,
            "tickSize": spec.tick_size,
            "stepSize": spec.step_size,
            "stepBaseQuantums": spec.step_base_quantums,
            "subticksPerTick": spec.subticks_per_tick,
            "marketType": spec.market_type,
            "openInterestLowerCap": "0" if spec.market_type == "CROSS" else "500000",
            "openInterestUpperCap": "0" if spec.market_type == "CROSS" else "1000000",
            "baseOpenInterest": trading["baseOpenInterest"],
            "defaultFundingRate1H": "0",
        }

    def orderbook_view(self, ticker: str, limit: int) -> Dict[str, Any]:
        state = self.markets[ticker]
        spec = state.spec
        bids, asks = state.book.view(limit)
        return {
            "bids": [{"price": spec.price(p), "size": spec.size(s)} for p, s in bids],
            "asks": [{"price": spec.price(p), "size": spec.size(s)} for p, s in asks],
        }

    def trades(
        self,
        ticker: str,
        limit: int,
        before_height: Optional[int] = None,
        before_time: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for height, trade in reversed(self.markets[ticker].trades):
            if before_height is not None and height > before_height:
                continue
            if before_time is not None and trade["createdAt"] > before_time:
                continue
            out.append(trade)
            if len(out) >= limit:
                break
        return out

    def all_trades(self, ticker: str) -> List[Dict[str, Any]]:
        return [t for _, t in reversed(self.markets[ticker].trades)]

    def subaccount_object(self, address: str, number: int) -> Optional[Dict[str, Any]]:
        if address != self.demo_address or number not in self.subaccounts:
            return None
        return self.subaccounts[number].rest_subaccount(self.oracle(), self.imf(), self.height)

    def children(self, address: str, parent: int) -> List[Subaccount]:
        if address != self.demo_address:
            return []
        return [s for n, s in sorted(self.subaccounts.items()) if n % 128 == parent]

    def parent_subaccount_object(self, address: str, parent: int) -> Optional[Dict[str, Any]]:
        children = self.children(address, parent)
        if not children:
            return None
        oracle, imf = self.oracle(), self.imf()
        return {
            "address": address,
            "parentSubaccountNumber": parent,
            "equity": dec_str(sum((c.equity(oracle) for c in children), Decimal(0))),
            "freeCollateral": dec_str(
                sum((c.free_collateral(oracle, imf) for c in children), Decimal(0))
            ),
            "childSubaccounts": [c.rest_subaccount(oracle, imf, self.height) for c in children],
        }

    def orders(
        self,
        subs: Sequence[Subaccount],
        statuses: Optional[Sequence[str]],
        ticker: Optional[str],
        limit: int,
        good_til_block_after: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        rows: List[Tuple[int, int, Subaccount, DemoOrder]] = []
        for sub in subs:
            for order in sub.orders.values():
                if statuses and order.status not in statuses:
                    continue
                if ticker is not None and order.ticker != ticker:
                    continue
                if good_til_block_after is not None and (
                    order.good_til_block is None or order.good_til_block <= good_til_block_after
                ):
                    continue
                rows.append((order.created_height, order.client_id, sub, order))
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        return [sub.rest_order(order) for _, _, sub, order in rows[:limit]]
