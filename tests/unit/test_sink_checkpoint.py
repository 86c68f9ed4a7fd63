"""Checkpoints: the synthetic ``subscribed`` frame of a shadow state rebuilds the same state."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from dydx_ws.protocol._channels import Topic
from dydx_ws.protocol._decode import decode_message
from dydx_ws.sinks.base import SinkFrame
from dydx_ws.sinks.checkpoint import ShadowState
from dydx_ws.state._store import LocalState


def _frame(obj: Dict[str, Any]) -> SinkFrame:
    return SinkFrame(
        json.dumps(obj), 1.0, "c1", obj["type"], obj.get("channel"), obj.get("id"), obj
    )


def _book_frames() -> List[Dict[str, Any]]:
    base = {"connection_id": "c1", "channel": "v4_orderbook", "id": "BTC-USD"}
    return [
        {**base, "type": "subscribed", "message_id": 1, "contents": {
            "bids": [{"price": "100", "size": "1"}, {"price": "99", "size": "2"}],
            "asks": [{"price": "101", "size": "1.5"}]}},
        {**base, "type": "channel_data", "message_id": 2, "contents": {"bids": [["99", "0"]]}},
        {**base, "type": "channel_data", "message_id": 3, "contents": {"asks": [["102", "4"]]}},
    ]  # fmt: skip


def test_book_checkpoint_loads_the_same_book() -> None:
    shadow = ShadowState()
    key = ("v4_orderbook", "BTC-USD")
    assert shadow.checkpoint(key) is None  # nothing applied yet
    for obj in _book_frames():
        shadow.apply(_frame(obj))
    frame = shadow.checkpoint(key)
    assert frame is not None and frame["message_id"] == 3 and frame["type"] == "subscribed"
    state = LocalState("message_id")
    state.create(Topic("v4_orderbook", "BTC-USD", False))
    state.apply(key, decode_message(json.dumps(frame)))
    book = state.books["BTC-USD"]
    assert [(str(x.price), str(x.size)) for x in book.bids] == [("100", "1")]
    assert [(str(x.price), str(x.size)) for x in book.asks] == [("101", "1.5"), ("102", "4")]


def test_no_checkpoint_after_a_gap_until_the_next_snapshot() -> None:
    shadow = ShadowState()
    key = ("v4_orderbook", "BTC-USD")
    frames = _book_frames()
    for obj in frames:
        shadow.apply(_frame(obj))
    shadow.invalidate()
    assert shadow.checkpoint(key) is None
    shadow.apply(_frame(frames[1]))  # an update is not enough
    assert shadow.checkpoint(key) is None
    shadow.apply(_frame(frames[0]))  # a fresh snapshot is
    assert shadow.checkpoint(key) is not None


def test_stateless_channels_checkpoint_as_empty_snapshots() -> None:
    shadow = ShadowState()
    obj = {"type": "channel_data", "connection_id": "c1", "message_id": 5,
           "channel": "v4_trades", "id": "ETH-USD", "contents": {"trades": []}}  # fmt: skip
    shadow.apply(_frame(obj))
    frame = shadow.checkpoint(("v4_trades", "ETH-USD"))
    assert frame is not None and frame["contents"] == {"trades": []}
    msg = decode_message(json.dumps(frame))
    assert msg.is_snapshot and msg.trades == []
