"""``decode_message``: one wire frame in, one typed :mod:`~dydx_ws.protocol._messages` message out.

The frame is parsed by :mod:`dydx_ws.protocol._json` (orjson if installed, else ``json.loads``,
with identical results); the envelope is read directly, and contents go through
the generated model decoders of :mod:`._decoders`. Batches (``channel_batch_data``) are
merged in wire order. Any failure raises :class:`~dydx_ws.DecodeError` naming channel, type
and field.

The same channel logic also runs with ``Model.from_dict`` as the model loader
(:func:`reference_decode`): tests use it to prove the fast path produces identical messages.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Type, TypeVar

from ..errors import DecodeError
from ..models import (
    AssetPosition,
    BlockHeight,
    BlockHeightUpdate,
    Candle,
    CandleResolution,
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
from ..models._base import NUMBER_SYNTAX, parse_height
from . import _json as json_backend
from ._channels import (
    BLOCK_HEIGHT,
    CANDLES,
    CHANNEL_TABLE,
    CHANNELS,
    MARKETS,
    ORDERBOOK,
    PARENT_SUBACCOUNTS,
    SUBACCOUNTS,
    TRADES,
)
from ._decoders import _to_decimal, decoder_for, locate_error
from ._messages import (
    ConnectedMessage,
    ErrorMessage,
    Message,
    ParentSubaccountMessage,
    SubaccountMessage,
    UnknownMessage,
    UnsubscribedMessage,
)

__all__ = ["CHANNELS", "decode_message", "reference_decode"]

DATA_TYPES = ("subscribed", "channel_data", "channel_batch_data")
_CANDLES = CHANNEL_TABLE[CANDLES]
_DECODE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError)

M = TypeVar("M")
Loader = Callable[[Any], Any]
Fields = Dict[str, Any]
_new = object.__new__


class _Located(Exception):
    """Raised by the locating loader: the model and dotted path of the failing field."""

    def __init__(self, where: str, cause: BaseException) -> None:
        super().__init__(where)
        self.where = where
        self.cause = cause


def _checked(v: str) -> Decimal:
    return Decimal(v) if NUMBER_SYNTAX(v) else _to_decimal(v)


def _list(v: Any) -> List[Any]:
    if v.__class__ is not list:
        raise TypeError(f"expected a list, got {type(v).__name__}")
    return v  # type: ignore[no-any-return]


def _obj(v: Any) -> Dict[str, Any]:
    if v.__class__ is not dict:
        raise TypeError(f"expected an object, got {type(v).__name__}")
    return v  # type: ignore[no-any-return]


class _Channels:
    """The per-channel contents logic, parameterised by how one model is loaded from a dict."""

    def __init__(
        self, loader_for: Callable[[type], Loader], *, fast: bool, locating: bool = False
    ) -> None:
        ld = loader_for
        self.trade, self.candle, self.market = ld(Trade), ld(Candle), ld(PerpetualMarket)
        self.trading, self.oracle = ld(TradingMarketUpdate), ld(OraclePrice)
        self.level = ld(PriceLevel)
        self.subaccount, self.parent = ld(Subaccount), ld(ParentSubaccount)
        self.order, self.fill = ld(Order), ld(Fill)
        self.perp, self.asset = ld(PerpetualPosition), ld(AssetPosition)
        self.transfer, self.reward = ld(Transfer), ld(TradingReward)
        self.height, self.height_update = ld(BlockHeight), ld(BlockHeightUpdate)
        self.pair = self._located_pair if locating else self._fast_pair if fast else self._ref_pair
        parsers: Dict[str, Callable[[Iterable[Any], bool, Any], Fields]] = {
            TRADES: self.trades,
            ORDERBOOK: self.orderbook,
            CANDLES: self.candles,
            MARKETS: self.markets,
            SUBACCOUNTS: self.subaccounts,
            PARENT_SUBACCOUNTS: self.parent_subaccounts,
            BLOCK_HEIGHT: self.block_height,
        }
        # Message classes come from the channel table; a channel without a parser fails here.
        self.by_channel: Dict[str, Tuple[type, Callable[[Iterable[Any], bool, Any], Fields]]] = {
            name: (spec.message_class, parsers[name]) for name, spec in CHANNEL_TABLE.items()
        }

    # -- levels: snapshots carry {"price","size"} objects, updates [price, size] pairs ---------
    @staticmethod
    def _fast_pair(
        pair: Any,
        _new: Any = _new,
        _level: type = PriceLevel,
        _dec: type = Decimal,
        _num: Callable[[str], Any] = NUMBER_SYNTAX,
    ) -> PriceLevel:
        if pair.__class__ is not list:
            raise TypeError(f"price level must be [price, size], got {type(pair).__name__}")
        p, s = pair[0], pair[1]
        level: PriceLevel = _new(_level)
        level.__dict__ = {
            "price": _dec(p) if p.__class__ is str and _num(p) else _to_decimal(p),
            "size": _dec(s) if s.__class__ is str and _num(s) else _to_decimal(s),
        }
        return level

    def _located_pair(self, pair: Any) -> PriceLevel:
        try:
            return self._fast_pair(pair)
        except _DECODE_ERRORS as exc:
            if pair.__class__ is list and len(pair) >= 2:
                for name, value in (("price", pair[0]), ("size", pair[1])):
                    try:
                        _to_decimal(value) if value.__class__ is not str else _checked(value)
                    except _DECODE_ERRORS as cause:
                        raise _Located(f"PriceLevel.{name}", cause) from None
            raise _Located("PriceLevel", exc) from None

    def _ref_pair(self, pair: Any) -> PriceLevel:
        if pair.__class__ is not list:
            raise TypeError(f"price level must be [price, size], got {type(pair).__name__}")
        return PriceLevel.from_dict({"price": pair[0], "size": pair[1]})

    def _levels(self, items: Any) -> List[PriceLevel]:
        pair, level = self.pair, self.level
        return [pair(x) if x.__class__ is list else level(x) for x in _list(items)]

    # -- channels: each takes the list of contents objects and returns the message fields -----
    def trades(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        trade = self.trade
        out: List[Trade] = []
        for c in contents:
            out += [trade(t) for t in _list(_obj(c)["trades"])]
        return {"trades": out, "backfilled": False}

    def orderbook(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        bids: List[PriceLevel] = []
        asks: List[PriceLevel] = []
        for c in contents:
            get = _obj(c).get
            b, a = get("bids"), get("asks")
            if b:
                bids += self._levels(b)
            if a:
                asks += self._levels(a)
        return {"bids": bids, "asks": asks}

    def candles(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        candle = self.candle
        if snapshot:
            (c,) = contents
            out = [candle(x) for x in _list(_obj(c)["candles"])]
        else:
            out = [candle(c) for c in contents]
        for x in out:
            if x.resolution is None and sid.__class__ is str and "/" in sid:
                x.resolution = CandleResolution(_CANDLES.parse_id(sid)["resolution"])
        return {"candles": out}

    def markets(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        if snapshot:
            (c,) = contents
            market = self.market
            markets = {k: market(v) for k, v in _obj(_obj(c)["markets"]).items()}
            return {"markets": markets, "trading": [], "oracle_prices": []}
        trading: List[TradingMarketUpdate] = []
        oracle: List[OraclePrice] = []
        for c in contents:
            get = _obj(c).get
            diffs, prices = get("trading"), get("oraclePrices")
            if diffs:
                trading += _keyed(self.trading, diffs)
            if prices:
                oracle += _keyed(self.oracle, prices)
        return {"markets": {}, "trading": trading, "oracle_prices": oracle}

    def subaccounts(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        return self._account(contents, snapshot, self.subaccount)

    def parent_subaccounts(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        return self._account(contents, snapshot, self.parent)

    def _account(self, contents: Iterable[Any], snapshot: bool, account: Loader) -> Fields:
        order, fill, perp, asset = self.order, self.fill, self.perp, self.asset
        subaccount = height = None
        orders: List[Any] = []
        fills: List[Any] = []
        perps: List[Any] = []
        assets: List[Any] = []
        transfers: List[Any] = []
        rewards: List[Any] = []
        for c in contents:
            get = _obj(c).get
            if snapshot and get("subaccount") is not None:
                subaccount = account(c["subaccount"])
            items = get("orders")
            if items:
                orders += map(order, _list(items))
            items = get("fills")
            if items:
                fills += map(fill, _list(items))
            items = get("perpetualPositions")
            if items:
                perps += map(perp, _list(items))
            items = get("assetPositions")
            if items:
                assets += map(asset, _list(items))
            items = get("transfers")
            if items is not None:  # a single object on the wire; tolerate a list too
                transfers += map(self.transfer, _as_list(items))
            items = get("tradingReward")
            if items is not None:
                rewards += map(self.reward, _as_list(items))
            items = get("blockHeight")
            if items is not None:
                height = parse_height(items)
        return {
            "subaccount": subaccount,
            "orders": orders,
            "fills": fills,
            "perpetual_positions": perps,
            "asset_positions": assets,
            "transfers": transfers,
            "trading_rewards": rewards,
            "block_height": height,
        }

    def block_height(self, contents: Iterable[Any], snapshot: bool, sid: Any) -> Fields:
        if snapshot:
            blocks = [self.height(c) for c in contents]
        else:
            blocks = []
            for c in contents:
                u = self.height_update(c)
                b: BlockHeight = _new(BlockHeight)
                b.__dict__.update(height=u.block_height, time=u.time)
                blocks.append(b)
        last = blocks[-1]
        return {"height": last.height, "time": last.time, "blocks": blocks}


def _as_list(v: Any) -> List[Any]:
    return v if v.__class__ is list else [v]  # type: ignore[no-any-return]


def _keyed(load: Loader, items: Any) -> List[Any]:
    """Decode a ``{ticker: object}`` map to a list; each ``ticker`` defaults to its key."""
    out = []
    for ticker, raw in _obj(items).items():
        obj = load(raw)
        if obj.ticker is None:
            obj.ticker = ticker
        out.append(obj)
    return out


class FrameDecoder:
    """Turns frames into messages with a given model loader (fast, reference or locating)."""

    def __init__(
        self, loader_for: Callable[[type], Loader], *, fast: bool, locating: bool = False
    ) -> None:
        self._channels = _Channels(loader_for, fast=fast, locating=locating)
        self._fast = fast
        self._locating = locating

    def decode(self, raw: Any, received_at: Optional[float] = None) -> Message:
        kind = raw.__class__
        if kind is str or kind is bytes or kind is bytearray:
            try:
                # WebSocket text is UTF-8 (RFC 6455): bytes are decoded strictly (this is the
                # UTF-8 validation websocket-client is told to skip), never guessed.
                frame = json_backend.loads(raw)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                raise DecodeError(f"invalid JSON: {exc}", raw=raw) from None
            except RecursionError:
                raise DecodeError("invalid JSON: nested too deeply", raw=raw[:200]) from None
        elif kind is dict:
            frame = raw
        else:
            raise DecodeError(f"a frame must be str, bytes or dict, not {kind.__name__}", raw=raw)
        if frame.__class__ is not dict:
            raise DecodeError(f"a frame must be a JSON object, got {type(frame).__name__}", raw=raw)
        if received_at is None:
            received_at = time.time()

        mtype = frame.get("type")
        channel = frame.get("channel")
        handler = None
        if mtype in DATA_TYPES:
            if channel.__class__ is not str:
                reason = "channel is required" if channel is None else "channel must be a string"
                raise DecodeError(reason, type=mtype, field="channel", raw=raw)
            handler = self._channels.by_channel.get(channel)
        if handler is None:
            return self._control(frame, mtype, channel, received_at)
        cls, parse = handler
        snapshot = mtype == "subscribed"
        contents = frame.get("contents", _ABSENT)
        if contents is _ABSENT:
            raise DecodeError(
                "missing contents", channel=channel, type=mtype, field="contents", raw=raw
            )
        try:
            if mtype == "channel_batch_data":
                fields = parse(_list(contents), False, frame.get("id"))
            else:
                fields = parse((contents,), snapshot, frame.get("id"))
        except _DECODE_ERRORS as exc:
            if self._locating:
                raise
            raise _describe(frame, mtype, channel, exc) from None
        return self._envelope(cls, frame, mtype, channel, snapshot, received_at, fields)

    def _envelope(
        self,
        cls: Type[M],
        frame: Dict[str, Any],
        mtype: Any,
        channel: Any,
        snapshot: bool,
        received_at: float,
        fields: Fields,
    ) -> M:
        mid = frame.get("message_id")
        cid = frame.get("connection_id")
        sid = frame.get("id")
        version = frame.get("version")
        if (
            (mid.__class__ is not int and mid is not None)
            or (cid.__class__ is not str and cid is not None)
            or (sid.__class__ is not str and sid is not None)
            or (version.__class__ is not str and version is not None)
            or (channel.__class__ is not str and channel is not None)
        ):
            raise _envelope_error(frame, mtype, channel)
        values = {
            "type": mtype,
            "channel": channel,
            "id": sid,
            "connection_id": cid,
            "message_id": mid,
            "version": version,
            "is_snapshot": snapshot,
            "received_at": received_at,
            **fields,
        }
        if cls is SubaccountMessage or cls is ParentSubaccountMessage:
            number = frame.get("subaccountNumber")
            if number is not None and number.__class__ is not int:
                raise DecodeError(
                    "subaccountNumber must be an integer",
                    channel=channel,
                    type=mtype,
                    field="subaccountNumber",
                    raw=frame,
                )
            values["subaccount_number"] = number
        if not self._fast:
            return cls.from_dict(values)  # type: ignore[attr-defined, no-any-return]
        msg: M = _new(cls)
        msg.__dict__ = values
        return msg

    def _control(
        self, frame: Dict[str, Any], mtype: Any, channel: Any, received_at: float
    ) -> Message:
        if not mtype:
            raise DecodeError("type is required", field="type", raw=frame)
        if mtype.__class__ is not str:
            raise DecodeError("type must be a string", field="type", raw=frame)
        if mtype == "connected":
            cls: type = ConnectedMessage
            extra: Fields = {}
        elif mtype == "unsubscribed":
            cls, extra = UnsubscribedMessage, {}
        elif mtype == "error":
            text = frame.get("message")
            if text.__class__ is not str:
                raise DecodeError(
                    "error message must be a string", type=mtype, field="message", raw=frame
                )
            cls, extra = ErrorMessage, {"message": text}
        else:
            cls, extra = UnknownMessage, {"raw": frame}
        return self._envelope(cls, frame, mtype, channel, False, received_at, extra)


_ABSENT = object()


def _envelope_error(frame: Dict[str, Any], mtype: Any, channel: Any) -> DecodeError:
    for key, kinds in (
        ("message_id", (int,)),
        ("connection_id", (str,)),
        ("id", (str,)),
        ("version", (str,)),
        ("channel", (str,)),
    ):
        value = frame.get(key)
        if value is not None and (type(value) not in kinds):
            return DecodeError(
                f"{key} must be {kinds[0].__name__}, got {type(value).__name__}",
                channel=channel if isinstance(channel, str) else None,
                type=mtype,
                field=key,
                raw=frame,
            )
    return DecodeError("invalid envelope", channel=channel, type=mtype, raw=frame)


def _locating_loader(cls: type) -> Loader:
    fast: Loader = decoder_for(cls)

    def load(value: Any) -> Any:
        try:
            return fast(value)
        except _DECODE_ERRORS:
            where, cause = locate_error(cls, value)
            raise _Located(f"{cls.__name__}.{where}", cause) from None

    return load


def _describe(frame: Dict[str, Any], mtype: Any, channel: Any, exc: BaseException) -> DecodeError:
    """Re-run the failing frame with the locating loader to name the offending field."""
    try:
        _LOCATING.decode(frame)
    except _Located as located:
        return DecodeError(
            str(located.cause),
            channel=channel,
            type=mtype,
            field=located.where,
            raw=frame,
        )
    except DecodeError as err:
        return err
    except _DECODE_ERRORS as structural:
        exc = structural
    return DecodeError(
        f"malformed contents: {type(exc).__name__}: {exc}",
        channel=channel,
        type=mtype,
        field="contents",
        raw=frame,
    )


_FAST = FrameDecoder(decoder_for, fast=True)
_REFERENCE = FrameDecoder(lambda cls: cls.from_dict, fast=False)  # type: ignore[attr-defined]
_LOCATING = FrameDecoder(_locating_loader, fast=True, locating=True)


def decode_message(raw: Any, *, received_at: Optional[float] = None) -> Message:
    """Decode one frame (``str``, ``bytes`` or an already parsed ``dict``) into its typed message.

    Unknown types and channels give :class:`~dydx_ws.UnknownMessage`; anything malformed
    raises :class:`~dydx_ws.DecodeError` (and nothing else).
    """
    return _FAST.decode(raw, received_at)


def reference_decode(raw: Any, *, received_at: Optional[float] = None) -> Message:
    """The same as :func:`decode_message` but every model is built with ``Model.from_dict``.

    Slow (dataclasses-json); exists so tests can prove the generated decoders are exact.
    """
    return _REFERENCE.decode(raw, received_at)
