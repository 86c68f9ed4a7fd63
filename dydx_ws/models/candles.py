"""Candles (docs/protocol.md §3.4, §5.3)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import List, Optional

from ._base import WireModel, timestamp
from .enums import CandleResolution


@dataclass
class Candle(WireModel):
    """One OHLCV candle. Updates may re-send an older ``started_at``: key candles by it.

    ``resolution`` is filled from the subscription id when a (2023-era) server omits it.
    """

    ticker: str
    low: Decimal
    high: Decimal
    open: Decimal
    close: Decimal
    base_token_volume: Decimal
    usd_volume: Decimal
    trades: int
    started_at: datetime = timestamp()
    resolution: Optional[CandleResolution] = None
    starting_open_interest: Optional[Decimal] = None
    orderbook_mid_price_open: Optional[Decimal] = None
    orderbook_mid_price_close: Optional[Decimal] = None
    id: Optional[str] = None


@dataclass
class CandlesResponse(WireModel):
    """Body of ``GET /v4/candles/perpetualMarkets/{ticker}`` (newest first)."""

    candles: List[Candle]
