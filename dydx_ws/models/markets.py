"""Perpetual markets: the full market object (REST and the ``v4_markets`` snapshot), the partial
trading diffs and the oracle prices streamed as updates (docs/protocol.md §3.1, §5.1)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Dict, Optional

from ._base import WireModel, opt_height, opt_timestamp, renamed
from .enums import MarketStatus, MarketType


@dataclass
class PerpetualMarket(WireModel):
    """A perpetual market as ``GET /v4/perpetualMarkets`` and the markets snapshot describe it.

    Only ``ticker`` is guaranteed: older and newer servers add or omit fields, so the rest are
    optional rather than a reason to reject a frame.
    """

    ticker: str
    clob_pair_id: Optional[str] = None
    status: Optional[MarketStatus] = None
    oracle_price: Optional[Decimal] = None
    price_change_24h: Optional[Decimal] = renamed("priceChange24H")
    volume_24h: Optional[Decimal] = renamed("volume24H")
    trades_24h: Optional[int] = renamed("trades24H")
    next_funding_rate: Optional[Decimal] = None
    initial_margin_fraction: Optional[Decimal] = None
    maintenance_margin_fraction: Optional[Decimal] = None
    open_interest: Optional[Decimal] = None
    atomic_resolution: Optional[int] = None
    quantum_conversion_exponent: Optional[int] = None
    tick_size: Optional[Decimal] = None
    step_size: Optional[Decimal] = None
    step_base_quantums: Optional[int] = None
    subticks_per_tick: Optional[int] = None
    market_type: Optional[MarketType] = None
    open_interest_lower_cap: Optional[Decimal] = None
    open_interest_upper_cap: Optional[Decimal] = None
    base_open_interest: Optional[Decimal] = None
    default_funding_rate_1h: Optional[Decimal] = renamed("defaultFundingRate1H")
    market_id: Optional[int] = None


@dataclass
class TradingMarketUpdate(WireModel):
    """A ``trading`` diff of one market: only the fields that changed are set (the rest are None).

    ``ticker`` is filled from the diff's key when the diff itself does not carry it.
    """

    ticker: Optional[str] = None
    id: Optional[str] = None
    clob_pair_id: Optional[str] = None
    market_id: Optional[int] = None
    status: Optional[MarketStatus] = None
    initial_margin_fraction: Optional[Decimal] = None
    maintenance_margin_fraction: Optional[Decimal] = None
    open_interest: Optional[Decimal] = None
    quantum_conversion_exponent: Optional[int] = None
    atomic_resolution: Optional[int] = None
    subticks_per_tick: Optional[int] = None
    step_base_quantums: Optional[int] = None
    market_type: Optional[MarketType] = None
    open_interest_lower_cap: Optional[Decimal] = None
    open_interest_upper_cap: Optional[Decimal] = None
    base_open_interest: Optional[Decimal] = None
    default_funding_rate_1h: Optional[Decimal] = renamed("defaultFundingRate1H")
    price_change_24h: Optional[Decimal] = renamed("priceChange24H")
    volume_24h: Optional[Decimal] = renamed("volume24H")
    trades_24h: Optional[int] = renamed("trades24H")
    next_funding_rate: Optional[Decimal] = None
    tick_size: Optional[Decimal] = None
    step_size: Optional[Decimal] = None
    oracle_price: Optional[Decimal] = None


@dataclass
class OraclePrice(WireModel):
    """One market's oracle price update; ``ticker`` comes from the update's key."""

    oracle_price: Decimal
    ticker: Optional[str] = None
    effective_at: Optional[datetime] = opt_timestamp()
    effective_at_height: Optional[int] = opt_height()
    market_id: Optional[int] = None


@dataclass
class PerpetualMarketsResponse(WireModel):
    """Body of ``GET /v4/perpetualMarkets`` (also the ``v4_markets`` snapshot contents)."""

    markets: Dict[str, PerpetualMarket]
