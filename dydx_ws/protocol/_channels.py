"""The channel table: everything the client knows about each Indexer channel, in one place.

One :class:`Channel` per channel (docs/protocol.md §3.0): its wire name, the subscribe parameters
its id is made of and how that id is built and parsed, the id the server echoes on its frames
(§2.6), batching, the per-connection limit (§4.4), whether it is stateful (a snapshot that later
frames change) and its message class. Every other module asks this table instead of restating it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple, Type

from ._messages import (
    BlockHeightMessage,
    CandlesMessage,
    MarketsMessage,
    Message,
    OrderbookMessage,
    ParentSubaccountMessage,
    SubaccountMessage,
    TradesMessage,
)

__all__ = [
    "BLOCK_HEIGHT",
    "CANDLES",
    "CHANNELS",
    "CHANNEL_TABLE",
    "MARKETS",
    "ORDERBOOK",
    "PARENT_SUBACCOUNTS",
    "STATEFUL",
    "SUBACCOUNTS",
    "TRADES",
    "Channel",
    "Topic",
    "channel",
    "find",
    "frame_id",
    "sent_id",
]

Key = Tuple[str, Optional[str]]
Params = Dict[str, Any]

TRADES = "v4_trades"
ORDERBOOK = "v4_orderbook"
CANDLES = "v4_candles"
MARKETS = "v4_markets"
SUBACCOUNTS = "v4_subaccounts"
PARENT_SUBACCOUNTS = "v4_parent_subaccounts"
BLOCK_HEIGHT = "v4_block_height"


def _parse_ticker(name: str, wire_id: str) -> Params:
    return {"ticker": wire_id}


def _parse_ticker_resolution(name: str, wire_id: str) -> Params:
    ticker, sep, resolution = wire_id.partition("/")
    if not sep:
        raise ValueError(f"{name} id must be TICKER/RESOLUTION, got {wire_id!r}")
    return {"ticker": ticker, "resolution": resolution}


def _parse_address_number(name: str, wire_id: str) -> Params:
    address, _, number = wire_id.rpartition("/")
    if not address or not (number.isascii() and number.isdigit()):
        raise ValueError(f"{name} id must be ADDRESS/NUMBER, got {wire_id!r}")
    return {"address": address, "subaccount_number": int(number)}


def _no_id(name: str, wire_id: str) -> Params:
    raise ValueError(f"{name} has no id, got {wire_id!r}")


@dataclass(frozen=True)
class Channel:
    """One Indexer channel as the client relies on it (immutable)."""

    name: str
    """The wire name (``"v4_trades"``), exact and case-sensitive."""
    short: str
    """A short human name (``"trades"``), used by the console script."""
    message_class: Type[Message]
    limit: int
    """Subscriptions of this channel the server allows on one connection (§4.4)."""
    stateful: bool
    """A snapshot that later frames change: no update may be applied without its snapshot."""
    id_params: Tuple[str, ...] = ()
    """The subscribe parameters the id is made of, in wire order (empty: no id is sent)."""
    id_format: str = ""
    """The id's shape for people (``"TICKER/RESOLUTION"``), empty for channels without one."""
    id_example: str = ""
    echoes_id: bool = True
    """Whether the server's frames carry an id (``v4_markets``: never)."""
    default_id: Optional[str] = None
    """The id the server keys the subscription by when none is sent (§2.6)."""
    batched: bool = True
    """Whether ``batched`` delivery (``channel_batch_data``) is supported (§3.8)."""
    _parse: Callable[[str, str], Params] = field(default=_no_id, repr=False, compare=False)

    @property
    def has_id(self) -> bool:
        """Whether a subscribe sends an id (all channels but markets and block height)."""
        return bool(self.id_params)

    def build_id(self, params: Mapping[str, Any]) -> Optional[str]:
        """The wire id for subscribe parameters (``{"ticker": "BTC-USD", "resolution": "1MIN"}``
        -> ``"BTC-USD/1MIN"``); None for a channel without an id. Parameters must be validated."""
        if not self.id_params:
            return None
        return "/".join(str(params[p]) for p in self.id_params)

    def parse_id(self, wire_id: str) -> Params:
        """The subscribe parameters in a wire id (the inverse of :meth:`build_id`); raises
        ``ValueError`` if it does not have the channel's shape. Values are not validated."""
        return self._parse(self.name, wire_id)

    def frame_id(self, sent_id: Optional[str]) -> Optional[str]:
        """The id the server puts on ``subscribed`` and data frames for a subscribe sent with
        ``sent_id`` (§2.6): None for markets, ``"v4_block_height"`` for block height sent
        without one. The client keys subscriptions by ``(name, frame_id)``.

        It also resolves the ids of error frames, which echo the id the client sent (none for
        markets and block height, §2.4), and the server-normalised ids quoted in error texts."""
        if not self.echoes_id:
            return None
        if self.default_id is not None:
            return sent_id or self.default_id
        return sent_id

    def sent_id(self, key_id: Optional[str]) -> Optional[str]:
        """The id to send on the wire for a subscription keyed ``(name, key_id)``: None for a
        channel without an id."""
        return key_id if self.id_params else None


_TABLE = (
    Channel(
        TRADES,
        "trades",
        TradesMessage,
        limit=32,
        stateful=False,
        id_params=("ticker",),
        id_format="TICKER",
        id_example="BTC-USD",
        _parse=_parse_ticker,
    ),
    Channel(
        ORDERBOOK,
        "orderbook",
        OrderbookMessage,
        limit=32,
        stateful=True,
        id_params=("ticker",),
        id_format="TICKER",
        id_example="BTC-USD",
        _parse=_parse_ticker,
    ),
    Channel(
        CANDLES,
        "candles",
        CandlesMessage,
        limit=32,
        stateful=False,
        id_params=("ticker", "resolution"),
        id_format="TICKER/RESOLUTION",
        id_example="BTC-USD/1MIN",
        _parse=_parse_ticker_resolution,
    ),
    Channel(
        MARKETS,
        "markets",
        MarketsMessage,
        limit=32,
        stateful=True,
        echoes_id=False,
        default_id=MARKETS,
    ),
    Channel(
        SUBACCOUNTS,
        "subaccount",
        SubaccountMessage,
        limit=256,
        stateful=True,
        id_params=("address", "subaccount_number"),
        id_format="ADDRESS/NUMBER",
        id_example="dydx1.../0",
        _parse=_parse_address_number,
    ),
    Channel(
        PARENT_SUBACCOUNTS,
        "parent",
        ParentSubaccountMessage,
        limit=256,
        stateful=True,
        id_params=("address", "subaccount_number"),
        id_format="ADDRESS/NUMBER",
        id_example="dydx1.../0",
        _parse=_parse_address_number,
    ),
    Channel(
        BLOCK_HEIGHT,
        "block_height",
        BlockHeightMessage,
        limit=1,
        stateful=False,
        default_id=BLOCK_HEIGHT,
    ),
)

CHANNEL_TABLE: Mapping[str, Channel] = MappingProxyType({c.name: c for c in _TABLE})
"""Wire name -> :class:`Channel`, in the order the console script lists them."""
CHANNELS: Tuple[str, ...] = tuple(CHANNEL_TABLE)
STATEFUL: FrozenSet[str] = frozenset(c.name for c in _TABLE if c.stateful)


def channel(name: str) -> Channel:
    """The table entry of a wire name (``KeyError`` for an unknown channel)."""
    return CHANNEL_TABLE[name]


def find(name: Any) -> Optional[Channel]:
    """The table entry of ``name``, or None if it is not a known channel name."""
    return CHANNEL_TABLE.get(name) if name.__class__ is str else None


def frame_id(name: str, sent_id: Optional[str]) -> Optional[str]:
    """:meth:`Channel.frame_id` of channel ``name``; ``sent_id`` unchanged for an unknown one."""
    spec = find(name)
    return sent_id if spec is None else spec.frame_id(sent_id)


def sent_id(name: str, key_id: Optional[str]) -> Optional[str]:
    """:meth:`Channel.sent_id` of channel ``name``; ``key_id`` unchanged for an unknown one."""
    spec = find(name)
    return key_id if spec is None else spec.sent_id(key_id)


class Topic:
    """One server-side subscription (immutable)."""

    __slots__ = ("batched", "channel", "key", "wire_id")

    def __init__(self, channel: str, wire_id: Optional[str], batched: bool) -> None:
        self.channel = channel
        self.wire_id = wire_id
        self.batched = batched
        self.key: Key = (channel, frame_id(channel, wire_id))

    def subscribe_text(self) -> str:
        msg: Dict[str, Any] = {"type": "subscribe", "channel": self.channel}
        if self.wire_id is not None:
            msg["id"] = self.wire_id
        if self.batched:
            msg["batched"] = True
        return json.dumps(msg, separators=(",", ":"))

    def unsubscribe_text(self) -> str:
        msg: Dict[str, Any] = {"type": "unsubscribe", "channel": self.channel}
        if self.wire_id is not None:
            msg["id"] = self.wire_id
        return json.dumps(msg, separators=(",", ":"))

    def __repr__(self) -> str:
        batched = ", batched" if self.batched else ""
        return f"Topic({self.channel}, {self.wire_id!r}{batched})"
