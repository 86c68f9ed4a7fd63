"""Order book price levels and the REST order book body (docs/protocol.md §3.3, §5.2)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import List

from ._base import WireModel


@dataclass
class PriceLevel(WireModel):
    """One aggregated price level; in updates ``size`` is the new absolute size (``0`` removes)."""

    price: Decimal
    size: Decimal


@dataclass
class OrderbookResponse(WireModel):
    """Body of ``GET /v4/orderbooks/perpetualMarket/{ticker}``: sorted, uncrossed, ≤100 per side."""

    bids: List[PriceLevel]
    asks: List[PriceLevel]
