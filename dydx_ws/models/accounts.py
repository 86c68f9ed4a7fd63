"""Subaccounts, parent subaccounts, positions, orders, fills, transfers and trading rewards
(docs/protocol.md §3.5, §3.6, §5.7, §5.8).

One class per concept serves both REST and WebSocket: the REST object and the stream's update
carry different subsets of fields, so fields not guaranteed by both are optional.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Dict, List, Optional

from ._base import WireModel, event_id, height, opt_height, opt_timestamp, timestamp
from .enums import (
    FillType,
    Liquidity,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    PositionStatus,
    TimeInForce,
    TransferType,
)


@dataclass
class PerpetualPosition(WireModel):
    """A perpetual position. ``size`` is negative for SHORT positions."""

    market: str
    side: PositionSide
    size: Decimal
    status: Optional[PositionStatus] = None
    max_size: Optional[Decimal] = None
    entry_price: Optional[Decimal] = None
    exit_price: Optional[Decimal] = None
    realized_pnl: Optional[Decimal] = None
    unrealized_pnl: Optional[Decimal] = None
    sum_open: Optional[Decimal] = None
    sum_close: Optional[Decimal] = None
    net_funding: Optional[Decimal] = None
    created_at: Optional[datetime] = opt_timestamp()
    created_at_height: Optional[int] = opt_height()
    closed_at: Optional[datetime] = opt_timestamp()
    subaccount_number: Optional[int] = None
    address: Optional[str] = None
    position_id: Optional[str] = None


@dataclass
class AssetPosition(WireModel):
    """An asset (collateral) position, e.g. USDC."""

    side: PositionSide
    size: Decimal
    symbol: Optional[str] = None
    asset_id: Optional[str] = None
    subaccount_number: Optional[int] = None
    address: Optional[str] = None
    position_id: Optional[str] = None


@dataclass
class Order(WireModel):
    """An order. Stream updates guarantee only ``id``, ``subaccount_id``, ``client_id``,
    ``status`` and ``order_flags``; everything else may be absent in an update."""

    id: str
    status: OrderStatus
    subaccount_id: Optional[str] = None
    client_id: Optional[str] = None
    order_flags: Optional[str] = None
    clob_pair_id: Optional[str] = None
    ticker: Optional[str] = None
    side: Optional[OrderSide] = None
    size: Optional[Decimal] = None
    price: Optional[Decimal] = None
    type: Optional[OrderType] = None
    time_in_force: Optional[TimeInForce] = None
    post_only: Optional[bool] = None
    reduce_only: Optional[bool] = None
    total_filled: Optional[Decimal] = None
    total_optimistic_filled: Optional[Decimal] = None
    trigger_price: Optional[Decimal] = None
    good_til_block: Optional[int] = opt_height()
    good_til_block_time: Optional[datetime] = opt_timestamp()
    created_at_height: Optional[int] = opt_height()
    created_at: Optional[datetime] = opt_timestamp()  # newer servers (docs/protocol.md §3.5)
    updated_at: Optional[datetime] = opt_timestamp()
    updated_at_height: Optional[int] = opt_height()
    client_metadata: Optional[str] = None
    removal_reason: Optional[str] = None
    subaccount_number: Optional[int] = None
    # builder codes and TWAP orders (orderFlags "128"; suborders "256"): REST and ender updates
    builder_address: Optional[str] = None
    fee_ppm: Optional[str] = None
    order_router_address: Optional[str] = None
    duration: Optional[str] = None
    interval: Optional[str] = None
    price_tolerance: Optional[str] = None


@dataclass
class Fill(WireModel):
    """One of the account's fills (maker or taker)."""

    id: str
    side: OrderSide
    size: Decimal
    price: Decimal
    liquidity: Optional[Liquidity] = None
    type: Optional[FillType] = None
    ticker: Optional[str] = None
    market: Optional[str] = None
    market_type: Optional[str] = None
    subaccount_id: Optional[str] = None
    clob_pair_id: Optional[str] = None
    quote_amount: Optional[Decimal] = None
    event_id: Optional[str] = event_id()
    transaction_hash: Optional[str] = None
    created_at: Optional[datetime] = opt_timestamp()
    created_at_height: Optional[int] = opt_height()
    order_id: Optional[str] = None
    client_metadata: Optional[str] = None
    fee: Optional[Decimal] = None
    affiliate_rev_share: Optional[Decimal] = None
    builder_address: Optional[str] = None
    builder_fee: Optional[Decimal] = None
    order_router_address: Optional[str] = None
    order_router_fee: Optional[Decimal] = None
    position_size_before: Optional[Decimal] = None
    entry_price_before: Optional[Decimal] = None
    position_side_before: Optional[str] = None
    subaccount_number: Optional[int] = None


@dataclass
class TransferParty(WireModel):
    """One side of a transfer; wallets have no ``subaccount_number``."""

    address: str
    subaccount_number: Optional[int] = None


@dataclass
class Transfer(WireModel):
    """A transfer, deposit or withdrawal touching the subaccount."""

    sender: TransferParty
    recipient: TransferParty
    size: Decimal
    symbol: Optional[str] = None
    type: Optional[TransferType] = None
    transaction_hash: Optional[str] = None
    created_at: Optional[datetime] = opt_timestamp()
    created_at_height: Optional[int] = opt_height()
    id: Optional[str] = None


@dataclass
class TradingReward(WireModel):
    """A trading reward credited at a block."""

    trading_reward: Decimal
    created_at: datetime = timestamp()
    created_at_height: int = height()


@dataclass
class Subaccount(WireModel):
    """A subaccount as REST and the ``v4_subaccounts`` snapshot describe it."""

    address: str
    subaccount_number: int
    equity: Decimal
    free_collateral: Decimal
    open_perpetual_positions: Dict[str, PerpetualPosition] = field(default_factory=dict)
    asset_positions: Dict[str, AssetPosition] = field(default_factory=dict)
    margin_enabled: Optional[bool] = None
    updated_at_height: Optional[int] = opt_height()
    latest_processed_block_height: Optional[int] = opt_height()


@dataclass
class ParentSubaccount(WireModel):
    """A parent subaccount (number < 128) with its child subaccounts."""

    address: str
    parent_subaccount_number: int
    equity: Decimal
    free_collateral: Decimal
    child_subaccounts: List[Subaccount] = field(default_factory=list)


@dataclass
class SubaccountResponse(WireModel):
    """Body of ``GET /v4/addresses/{address}/subaccountNumber/{n}`` (wrapped, as the server
    sends it)."""

    subaccount: Subaccount


@dataclass
class ParentSubaccountResponse(WireModel):
    """Body of ``GET /v4/addresses/{address}/parentSubaccountNumber/{n}``."""

    subaccount: ParentSubaccount


@dataclass
class AddressResponse(WireModel):
    """Body of ``GET /v4/addresses/{address}``: every subaccount of the address."""

    subaccounts: List[Subaccount] = field(default_factory=list)
    total_trading_rewards: Optional[Decimal] = None


@dataclass
class FillsResponse(WireModel):
    """Body of ``GET /v4/fills``."""

    fills: List[Fill] = field(default_factory=list)


@dataclass
class PerpetualPositionsResponse(WireModel):
    """Body of ``GET /v4/perpetualPositions``."""

    positions: List[PerpetualPosition] = field(default_factory=list)


@dataclass
class AssetPositionsResponse(WireModel):
    """Body of ``GET /v4/assetPositions``."""

    positions: List[AssetPosition] = field(default_factory=list)
