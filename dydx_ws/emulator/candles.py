"""Candles of all seven resolutions, built from the simulated trades as ender does."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from .jsutil import dec_str, iso

RESOLUTIONS: Dict[str, int] = {
    "1MIN": 60,
    "5MINS": 300,
    "15MINS": 900,
    "30MINS": 1800,
    "1HOUR": 3600,
    "4HOURS": 14400,
    "1DAY": 86400,
}

MAX_CANDLES = 1500


@dataclass
class Candle:
    started_at: int
    ticker: str
    resolution: str
    low: Decimal
    high: Decimal
    open: Decimal
    close: Decimal
    base_volume: Decimal
    usd_volume: Decimal
    trades: int
    starting_open_interest: Decimal
    mid_open: Optional[Decimal]
    mid_close: Optional[Decimal]

    def copy(self) -> Candle:
        """A copy that later trades do not change (for a message built later)."""
        return copy.copy(self)

    def to_json(self) -> Dict[str, Any]:
        """Field order of comlink's candle response and ender's candle message."""
        return {
            "startedAt": iso(self.started_at),
            "ticker": self.ticker,
            "resolution": self.resolution,
            "low": dec_str(self.low),
            "high": dec_str(self.high),
            "open": dec_str(self.open),
            "close": dec_str(self.close),
            "baseTokenVolume": dec_str(self.base_volume),
            "usdVolume": dec_str(self.usd_volume),
            "trades": self.trades,
            "startingOpenInterest": dec_str(self.starting_open_interest),
            "orderbookMidPriceOpen": None if self.mid_open is None else dec_str(self.mid_open),
            "orderbookMidPriceClose": None if self.mid_close is None else dec_str(self.mid_close),
        }


class CandleSeries:
    """All resolutions of one market; history is capped at ``MAX_CANDLES`` per resolution."""

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.history: Dict[str, List[Candle]] = {res: [] for res in RESOLUTIONS}

    def on_block(
        self,
        now: float,
        trades: List[Tuple[Decimal, Decimal]],
        last_price: Decimal,
        mid: Optional[Decimal],
        open_interest: Decimal,
    ) -> List[Candle]:
        """Advance to a block at ``now`` with its ``(price, size)`` trades; return changed candles.

        A block in a new period closes the previous candle (its mid close is refreshed and it is
        re-sent) and opens a new, possibly empty, candle; a block with trades updates the current
        one.
        """
        changed: List[Candle] = []
        for res, seconds in RESOLUTIONS.items():
            series = self.history[res]
            start = int(now // seconds) * seconds
            current = series[-1] if series else None
            if current is None or current.started_at != start:
                if current is not None:
                    current.mid_close = mid
                    changed.append(current)
                open_price = current.close if current is not None else last_price
                current = Candle(
                    start,
                    self.ticker,
                    res,
                    open_price,
                    open_price,
                    open_price,
                    open_price,
                    Decimal(0),
                    Decimal(0),
                    0,
                    open_interest,
                    mid,
                    mid,
                )
                series.append(current)
                if len(series) > MAX_CANDLES:
                    del series[0]
                if not trades:
                    changed.append(current)
            if trades:
                for price, size in trades:
                    if current.trades == 0:
                        current.open = current.low = current.high = price
                    current.low = min(current.low, price)
                    current.high = max(current.high, price)
                    current.close = price
                    current.base_volume += size
                    current.usd_volume += price * size
                    current.trades += 1
                current.mid_close = mid
                changed.append(current)
        return changed

    def query(
        self,
        resolution: str,
        limit: int,
        from_ts: Optional[float] = None,
        to_ts: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Newest first, ``fromISO`` inclusive and ``toISO`` exclusive on ``startedAt``."""
        out: List[Dict[str, Any]] = []
        for candle in reversed(self.history[resolution]):
            if to_ts is not None and candle.started_at >= to_ts:
                continue
            if from_ts is not None and candle.started_at < from_ts:
                break
            out.append(candle.to_json())
            if len(out) >= limit:
                break
        return out
