"""The seeded, deterministic market and account simulator behind both the stream and REST.

``MarketSimulator.step(now)`` advances one block and returns the websocket publications it caused
(orderbook level updates, trades, candles, oracle prices, trading diffs, subaccount messages,
block height) in the order the real producers emit them.  The read methods (``orderbook_view``,
``trades``, ``candles``, ``subaccount`` …) are the comlink truth the stream builds.  For a given
seed and the same ``now`` values the output is identical.

With many markets a block trades only ``markets_per_block`` of them (the first ones always,
the quiet others in turns), so its cost stays bounded; ``list_market``/``delist_market`` change
the listing between blocks.

This module holds the block loop, the listing and the level faults; the parts are mixins: the crowd
(:mod:`.crowd`), the demo account's trading (:mod:`.demo_trading`) and the comlink reads
(:mod:`.views`), over the shared state of :mod:`.sim_base`.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from .account import Subaccount
from .bech32 import demo_address
from .book import ASKS, BIDS, OrderBook
from .candles import CandleSeries
from .config import EmulatorConfig
from .crowd import CrowdSimulation
from .demo_trading import DemoTrading
from .jsutil import iso
from .markets import MarketSpec, is_ticker, make_spec, make_specs
from .sim_base import (
    DEMO_SUBACCOUNTS,
    HOT_MARKETS,
    INACTIVE_STATUSES,
    START_HEIGHT,
    WARMUP_SPACING,
    MarketState,
    PendingChanges,
    Publication,
    trade_history_cap,
)
from .tickers import MAX_MARKETS
from .views import ComlinkViews

__all__ = ["MarketSimulator", "MarketState", "Publication", "Subaccount"]

log = logging.getLogger("dydx_ws.emulator.simulator")


class MarketSimulator(CrowdSimulation, DemoTrading, ComlinkViews):
    """All simulated state; not thread-safe (the emulator drives it from its event loop only)."""

    def __init__(self, config: EmulatorConfig, base_time: float) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.specs = make_specs(config.markets)
        self.demo_address = demo_address(config.seed)
        self.height = START_HEIGHT - config.warmup_blocks
        self.time = base_time - config.warmup_blocks * WARMUP_SPACING
        cap = trade_history_cap(len(self.specs))
        self.markets: Dict[str, MarketState] = {
            ticker: self._new_market(spec, cap) for ticker, spec in self.specs.items()
        }
        self.active: List[MarketState] = list(self.markets.values())
        # immutable copies for readers on other threads (list_market/delist_market replace them)
        self.tickers: Tuple[str, ...] = tuple(self.markets)
        self.active_tickers: Tuple[str, ...] = self.tickers
        self._rotation = 0
        self.subaccounts: Dict[int, Subaccount] = {
            n: Subaccount(self.demo_address, n, Decimal(10000 if n == 0 else 2500), self.height)
            for n in DEMO_SUBACCOUNTS
        }
        self._next_order = 0
        self._event_index = 0
        self._client_id = 1000
        self._pending: Dict[int, PendingChanges] = {}
        self._last_trading_time = self.time
        self.crossed_levels = config.crossed_levels
        self.silent_deletions = config.silent_deletions
        for state in self.markets.values():
            self._replenish(state, [])
        for _ in range(config.warmup_blocks):
            self.step(self.time + WARMUP_SPACING)

    @staticmethod
    def _new_market(spec: MarketSpec, trade_cap: int) -> MarketState:
        return MarketState(
            spec=spec,
            book=OrderBook(),
            oracle_ticks=spec.initial_price_ticks,
            last_price=spec.price_dec(spec.initial_price_ticks),
            candles=CandleSeries(spec.ticker),
            trades=deque(maxlen=trade_cap),
            open_interest=spec.size_dec(5000),
        )

    # ----- listing ----------------------------------------------------------------------------

    def list_market(self, ticker: str, known_at: float = 0.0) -> Publication:
        """Add an ACTIVE market with a fresh book; returns ender's ``v4_markets`` message for it
        (the full trading object). ``known_at``: ``time.monotonic()`` from which socks accepts
        subscribes to it. A bad, duplicate or one-too-many ticker raises ``ValueError``."""
        if not isinstance(ticker, str) or not is_ticker(ticker):
            raise ValueError(f"not a perpetual ticker: {ticker!r}; tickers look like BTC-USD")
        if ticker in self.markets:
            status = self.markets[ticker].status
            raise ValueError(f"market {ticker!r} is already listed (status {status})")
        if len(self.markets) >= MAX_MARKETS:
            raise ValueError(f"at most {MAX_MARKETS} markets")
        spec = make_spec(ticker, len(self.markets))
        state = self._new_market(spec, trade_history_cap(len(self.markets) + 1))
        state.known_at = known_at
        self._replenish(state, [])  # before anyone can subscribe: nobody to tell
        state.sent_trading = self._trading_fields(state)
        self.specs[ticker] = spec
        self.markets[ticker] = state
        self.active.append(state)
        self.tickers = (*self.tickers, ticker)
        self.active_tickers = (*self.active_tickers, ticker)
        return Publication(
            "v4_markets", "v4_markets", {"trading": {ticker: self.trading_object(ticker)}}
        )

    def delist_market(self, ticker: str, status: str = "FINAL_SETTLEMENT") -> Publication:
        """Set a market's status (not ACTIVE): it stops trading, its book and history stay as
        they are; returns ender's ``v4_markets`` message (the full trading object with the new
        status). An unknown ticker, a bad status or the status it already has raises
        ``ValueError``."""
        if not isinstance(ticker, str) or ticker not in self.markets:
            raise ValueError(f"unknown market {ticker!r}")
        if status not in INACTIVE_STATUSES:
            raise ValueError(
                f"status must be one of {', '.join(INACTIVE_STATUSES)}, got {status!r} "
                "(a delisted market cannot be made ACTIVE again)"
            )
        state = self.markets[ticker]
        if state.status == status:
            raise ValueError(f"market {ticker!r} is already {status}")
        state.status = status
        self.active = [s for s in self.active if s is not state]
        self.active_tickers = tuple(s.spec.ticker for s in self.active)
        return Publication(
            "v4_markets", "v4_markets", {"trading": {ticker: self.trading_object(ticker)}}
        )

    def _block_markets(self) -> List[Tuple[MarketState, bool]]:
        """The markets trading in this block, each with whether it is a quiet turn: every
        active market (none quiet) when there are at most ``markets_per_block``; else the first
        ``HOT_MARKETS`` and a rotating window of the others, quiet (a quarter of the activity,
        and always one trade). Quiet markets are cheap, and each one still trades every
        ``ceil(others / window)`` blocks: 13 for 300 markets."""
        active = self.active
        limit = self.config.markets_per_block
        if len(active) <= limit:
            return [(state, False) for state in active]
        hot = min(HOT_MARKETS, limit - 1)
        tail = active[hot:]
        width = limit - hot  # < len(tail)
        start = self._rotation % len(tail)
        self._rotation = start + width
        plan = [(state, False) for state in active[:hot]]
        plan.extend((tail[(start + i) % len(tail)], True) for i in range(width))
        return plan

    # ----- one block --------------------------------------------------------------------------

    def step(self, now: float) -> List[Publication]:
        """Produce the next block at wall/simulated time ``now`` (epoch seconds)."""
        self.height += 1
        self.time = max(now, self.time + 0.001)
        self._event_index = 0
        self._pending = {}
        out: List[Publication] = []
        plan = self._block_markets()
        block_trades: Dict[str, List[Dict[str, Any]]] = {s.spec.ticker: [] for s, _ in plan}
        for state, _ in plan:
            self._move_oracle(state)
        activity = self.config.activity
        for state, quiet in plan:
            # a quiet turn always trades, so every market has trades every few seconds
            level = max(1, activity // 4) if quiet else activity
            self._crowd(state, level, out, block_trades[state.spec.ticker], always_take=quiet)
        self._demo(out, block_trades)
        for state, _ in plan:
            self._replenish(state, out)
            self._faults(state, out)
        for ticker, trades in block_trades.items():
            if trades:
                out.append(Publication("v4_trades", ticker, {"trades": trades}))
        self._flush_subaccounts(out)
        for state, _ in plan:
            ticker = state.spec.ticker
            prints = [(Decimal(t["price"]), Decimal(t["size"])) for t in block_trades[ticker]]
            mid = self._mid(state)
            for candle in state.candles.on_block(
                self.time, prints, state.last_price, mid, state.open_interest
            ):
                out.append(
                    Publication(
                        "v4_candles", f"{ticker}/{candle.resolution}", make=candle.copy().to_json
                    )
                )
        oracle_prices = {
            state.spec.ticker: {
                "oraclePrice": state.spec.price(state.oracle_ticks),
                "effectiveAt": iso(self.time),
                "effectiveAtHeight": str(self.height),
                "marketId": state.spec.clob_pair_id,
            }
            for state, _ in plan
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
