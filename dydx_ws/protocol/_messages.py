"""Typed messages: one per wire frame, as ``decode_message`` returns them and callbacks get them.

Snapshot (``subscribed``) and updates (``channel_data``, ``channel_batch_data``) of a channel share
one class; ``is_snapshot`` tells them apart, and a batch frame is merged losslessly, in wire order,
into the same lists a single update fills, so user code never branches on batching.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from dataclasses_json import DataClassJsonMixin, config

from ..models import (
    EPOCH,
    AssetPosition,
    BlockHeight,
    Candle,
    Fill,
    OraclePrice,
    Order,
    ParentSubaccount,
    PerpetualMarket,
    PerpetualPosition,
    PriceLevel,
    Subaccount,
    Trade,
    TradingMarketUpdate,
    TradingReward,
    Transfer,
)
from ..models._base import format_timestamp, parse_timestamp

if TYPE_CHECKING:
    from ..state._orderbook import OrderBook

__all__ = [
    "BlockHeightMessage",
    "CandlesMessage",
    "ConnectedMessage",
    "ErrorMessage",
    "MarketsMessage",
    "Message",
    "OrderbookMessage",
    "ParentSubaccountMessage",
    "SubaccountMessage",
    "TradesMessage",
    "UnknownMessage",
    "UnsubscribedMessage",
]


@dataclass
class Message(DataClassJsonMixin):
    """Fields every message has. ``received_at`` is the local receive time (``time.time()``)."""

    type: str = ""
    channel: Optional[str] = None
    id: Optional[str] = None
    connection_id: Optional[str] = None
    message_id: Optional[int] = None
    version: Optional[str] = None
    is_snapshot: bool = False
    received_at: float = 0.0

    @property
    def key(self) -> "tuple[Optional[str], Optional[str]]":
        """``(channel, id)``: the subscription this message belongs to."""
        return (self.channel, self.id)


@dataclass
class ConnectedMessage(Message):
    """The server's greeting; ``connection_id`` is new for every connection."""


@dataclass
class UnsubscribedMessage(Message):
    """Acknowledges an unsubscribe (sent even if nothing was subscribed)."""


@dataclass
class ErrorMessage(Message):
    """A server ``error``; ``message`` is the server's exact text."""

    message: str = ""


@dataclass
class UnknownMessage(Message):
    """A well-formed frame of a type or channel this SDK does not know; ``raw`` is the frame."""

    raw: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TradesMessage(Message):
    """``v4_trades``: the trades of the frame (snapshot: newest first, as the server sends).

    ``backfilled`` marks the message a ``backfill=True`` subscription gets after a gap: the trades
    the live stream missed, oldest first, delivered just before the new snapshot.
    """

    trades: List[Trade] = field(default_factory=list)
    backfilled: bool = False


@dataclass
class OrderbookMessage(Message):
    """``v4_orderbook``: the frame's levels in wire order (absolute sizes, ``0`` removes).

    ``book`` is the client's local :class:`~dydx_ws.OrderBook` after this frame was applied (set by
    the client; ``None`` from a bare ``decode_message``).
    """

    bids: List[PriceLevel] = field(default_factory=list)
    asks: List[PriceLevel] = field(default_factory=list)

    @property
    def book(self) -> Optional["OrderBook"]:
        # Not a dataclass field: local state, not part of the message, so it is never
        # serialised, compared or deep-copied by dataclasses-json.
        return self.__dict__.get("_book")  # type: ignore[no-any-return]

    @book.setter
    def book(self, value: Optional["OrderBook"]) -> None:
        self.__dict__["_book"] = value


@dataclass
class CandlesMessage(Message):
    """``v4_candles``: the snapshot's candles (newest first) or the updated candle(s)."""

    candles: List[Candle] = field(default_factory=list)


@dataclass
class MarketsMessage(Message):
    """``v4_markets``: ``markets`` in a snapshot; ``trading`` diffs and ``oracle_prices`` in
    updates."""

    markets: Dict[str, PerpetualMarket] = field(default_factory=dict)
    trading: List[TradingMarketUpdate] = field(default_factory=list)
    oracle_prices: List[OraclePrice] = field(default_factory=list)


@dataclass
class SubaccountMessage(Message):
    """``v4_subaccounts`` (and, as :class:`ParentSubaccountMessage`, ``v4_parent_subaccounts``).

    ``subaccount`` is set on snapshots only (None if the subaccount does not exist yet);
    ``subaccount_number`` is the child subaccount an update of the parent channel is about.
    """

    subaccount: Optional[Subaccount] = None
    orders: List[Order] = field(default_factory=list)
    fills: List[Fill] = field(default_factory=list)
    perpetual_positions: List[PerpetualPosition] = field(default_factory=list)
    asset_positions: List[AssetPosition] = field(default_factory=list)
    transfers: List[Transfer] = field(default_factory=list)
    trading_rewards: List[TradingReward] = field(default_factory=list)
    block_height: Optional[int] = None
    subaccount_number: Optional[int] = None


@dataclass
class ParentSubaccountMessage(SubaccountMessage):
    """``v4_parent_subaccounts``: the snapshot's ``subaccount`` is the parent with its children."""

    subaccount: Optional[ParentSubaccount] = None  # type: ignore[assignment]


@dataclass
class BlockHeightMessage(Message):
    """``v4_block_height``: the newest height and its time; ``blocks`` lists every block of the
    frame (one, or several in a batch)."""

    height: int = 0
    time: datetime = field(
        default=EPOCH, metadata=config(encoder=format_timestamp, decoder=parse_timestamp)
    )
    blocks: List[BlockHeight] = field(default_factory=list)
