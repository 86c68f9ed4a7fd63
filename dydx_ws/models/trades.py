"""Public trades (docs/protocol.md §3.2, §5.4)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import List, Optional

from ._base import WireModel, opt_height, timestamp
from .enums import OrderSide, TradeType


@dataclass
class Trade(WireModel):
    """One taker fill. ``created_at_height`` is present in snapshots/REST, absent in updates."""

    id: str
    side: OrderSide
    size: Decimal
    price: Decimal
    created_at: datetime = timestamp()
    type: Optional[TradeType] = None
    created_at_height: Optional[int] = opt_height()


@dataclass
class TradesResponse(WireModel):
    """Body of ``GET /v4/trades/perpetualMarket/{ticker}`` (newest first)."""

    trades: List[Trade]
    page_size: Optional[int] = None
    total_results: Optional[int] = None
    offset: Optional[int] = None
