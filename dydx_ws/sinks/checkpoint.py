"""Checkpoints: a subscription's local state at one point of its stream, as a ``subscribed`` frame.

A sink that writes a stream keeps a shadow of the ingest's local state (:class:`ShadowState`,
the client's own :class:`~dydx_ws.local_state.LocalState` and decoder), applied on the sink's
thread in stream order, so a checkpoint written after frame N reflects exactly frames 1..N.

A checkpoint is a synthetic ``subscribed`` frame in the server's wire format, so a consumer
loads it through the normal decode → dispatch → local state path, as if the server had just
sent a snapshot: order books (levels), markets (every market), subaccounts (subaccount with its
open positions and asset positions, open orders, block height), block height (the last one);
trades and candles carry no state (an empty snapshot marks the starting point). Parent
subaccounts have no checkpoint: a consumer starts from their last server snapshot instead.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from ..errors import DecodeError
from ..protocol._channels import (
    BLOCK_HEIGHT,
    CANDLES,
    MARKETS,
    ORDERBOOK,
    SUBACCOUNTS,
    TRADES,
    Topic,
)
from ..protocol._decode import decode_message
from ..protocol._messages import Message, OrderbookMessage
from ..state._store import LocalState
from .base import Key, SinkFrame

__all__ = ["CHECKPOINT_CHANNELS", "ShadowState"]

log = logging.getLogger("dydx_ws.sinks")

CHECKPOINT_CHANNELS = (TRADES, ORDERBOOK, CANDLES, MARKETS, SUBACCOUNTS, BLOCK_HEIGHT)
_STATELESS = {TRADES: "trades", CANDLES: "candles"}  # the contents key of an empty snapshot


class ShadowState:
    """The ingest's local state rebuilt from the frames a sink writes, per subscription key.

    ``valid(key)``: a snapshot has been applied and no frame of ``key`` was lost since
    (:meth:`invalidate` after a gap; the next ``subscribed`` frame makes it valid again).
    """

    def __init__(self, uncross: str = "message_id") -> None:
        self._state = LocalState(uncross)
        self._valid: Dict[Key, bool] = {}
        self._last: Dict[Key, Tuple[Optional[str], Optional[int]]] = {}  # connection, message id
        self._block: Optional[Dict[str, Any]] = None

    def apply(self, frame: SinkFrame) -> None:
        """Apply one data frame (decode errors leave the key invalid until its next snapshot)."""
        key = frame.key
        if key not in self._valid:
            self._valid[key] = False
            self._state.create(Topic(key[0], key[1], False))
        msg = frame.message
        if msg is not None:
            message_id = msg.message_id
        else:
            message_id = _int((frame.obj or {}).get("message_id"))
        self._last[key] = (frame.connection, message_id)
        if frame.channel == BLOCK_HEIGHT:
            contents = (frame.obj or {}).get("contents")  # one small frame per block
            if isinstance(contents, dict):
                self._block = contents
        if frame.channel in _STATELESS or frame.channel == BLOCK_HEIGHT:
            self._valid[key] = True  # no state to miss: the last block is enough
            return
        try:
            if msg is None:  # not decoded by the I/O side (e.g. a frame fed to the sink)
                msg = decode_message(frame.obj if frame.obj is not None else frame.raw)
            self._apply(key, msg)
        except (DecodeError, ValueError, TypeError, KeyError) as exc:
            log.warning("shadow state of %s could not apply a frame: %s", key, exc)
            self._valid[key] = False
            return
        if frame.type == "subscribed":
            self._valid[key] = True

    def _apply(self, key: Key, msg: Message) -> None:
        """Apply without touching ``msg``: it may be the message the callbacks get (the store's
        ``apply`` sets ``msg.book`` to its own book)."""
        if isinstance(msg, OrderbookMessage):
            book = self._state.books.get(key[1] or "")
            if book is not None:
                book.apply(msg)
        else:
            self._state.apply(key, msg)

    def invalidate(self) -> None:
        """Frames were lost: no key is trusted until its next snapshot."""
        for key in self._valid:
            self._valid[key] = False

    def valid(self, key: Key) -> bool:
        return self._valid.get(key, False)

    def checkpoint(self, key: Key) -> Optional[Dict[str, Any]]:
        """The ``subscribed`` frame that recreates ``key``'s state now (None if there is none:
        unknown or invalid key, or a channel without checkpoints)."""
        channel, sid = key
        if not self.valid(key) or channel not in CHECKPOINT_CHANNELS:
            return None
        contents = self._contents(key)
        if contents is None:
            return None
        connection, message_id = self._last.get(key, (None, None))
        frame: Dict[str, Any] = {
            "type": "subscribed",
            "connection_id": connection or "checkpoint",
            "message_id": message_id or 0,
            "channel": channel,
            "contents": contents,
        }
        if sid is not None:
            frame["id"] = sid
        return frame

    def _contents(self, key: Key) -> Optional[Dict[str, Any]]:
        channel, sid = key
        if channel in _STATELESS:
            return {_STATELESS[channel]: []}
        if channel == ORDERBOOK:
            book = self._state.books.get(sid or "")
            if book is None:
                return None
            return {
                "bids": [{"price": str(x.price), "size": str(x.size)} for x in book.bids],
                "asks": [{"price": str(x.price), "size": str(x.size)} for x in book.asks],
            }
        if channel == MARKETS:
            markets = self._state.markets.snapshot()
            return {"markets": {t: m.to_dict(encode_json=True) for t, m in markets.items()}}
        if channel == BLOCK_HEIGHT:
            block = self._block
            if block is None:
                return None
            height = block.get("blockHeight", block.get("height"))
            return {"height": height, "time": block.get("time")}
        if channel == SUBACCOUNTS:
            return self._subaccount(key)
        return None

    def _subaccount(self, key: Key) -> Optional[Dict[str, Any]]:
        from ..state import SubaccountState

        state = self._state.accounts.get(key)
        if not isinstance(state, SubaccountState) or not state.has_snapshot:
            return None
        contents: Dict[str, Any] = {
            "orders": [o.to_dict(encode_json=True) for o in state.open_orders.values()],
        }
        sub = state.subaccount
        if sub is not None:
            data = sub.to_dict(encode_json=True)
            data["openPerpetualPositions"] = {
                m: p.to_dict(encode_json=True) for m, p in state.positions.items()
            }
            data["assetPositions"] = {
                s: a.to_dict(encode_json=True) for s, a in state.asset_positions.items()
            }
            contents["subaccount"] = data
        if state.block_height is not None:
            contents["blockHeight"] = str(state.block_height)
        return contents


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
