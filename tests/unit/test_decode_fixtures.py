"""The decoder against the real-frame corpus: every frame decodes, the generated fast decoders
agree exactly with dataclasses-json's ``from_dict``, models round-trip, and malformed input
raises ``DecodeError`` and nothing else."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Iterator, Type

import pytest

from dydx_ws import DecodeError, UnknownMessage, decode_message
from dydx_ws.models import (
    AddressResponse,
    AssetPositionsResponse,
    BlockHeight,
    CandlesResponse,
    FillsResponse,
    Order,
    OrderbookResponse,
    ParentSubaccountResponse,
    PerpetualMarketsResponse,
    PerpetualPositionsResponse,
    ServerTime,
    SubaccountResponse,
    TradesResponse,
    WireModel,
)
from dydx_ws.protocol._decode import CHANNELS, reference_decode
from dydx_ws.protocol._decoders import decoder_for
from dydx_ws.protocol._messages import Message
from tests.helpers.fixture_corpus import frame_text, manifest, raw_bytes, rest_body

FRAMES = manifest("frame")
MALFORMED = manifest("malformed")
REST_ERRORS = [e for e in manifest("rest") if e.get("status")]

REST_MODELS: Dict[str, Type[WireModel]] = {
    "/v4/perpetualMarkets": PerpetualMarketsResponse,
    "/v4/orderbooks/perpetualMarket/{ticker}": OrderbookResponse,
    "/v4/trades/perpetualMarket/{ticker}": TradesResponse,
    "/v4/candles/perpetualMarkets/{ticker}": CandlesResponse,
    "/v4/height": BlockHeight,
    "/v4/time": ServerTime,
    "/v4/addresses/{address}/subaccountNumber/{n}": SubaccountResponse,
    "/v4/addresses/{address}/parentSubaccountNumber/{n}": ParentSubaccountResponse,
    "/v4/addresses/{address}": AddressResponse,
    "/v4/orders/{orderId}": Order,
    "/v4/fills": FillsResponse,
    "/v4/perpetualPositions": PerpetualPositionsResponse,
    "/v4/assetPositions": AssetPositionsResponse,
}
# REST bodies of endpoints the SDK models (transfers and historical funding are outside it).
REST = [
    e
    for e in manifest("rest")
    if not e.get("status") and e["endpoint"].split("?", 1)[0] in {*REST_MODELS, "/v4/orders"}
]


def _ids(entries: Any) -> list:  # type: ignore[type-arg]
    return [e["file"].split("/", 1)[1] for e in entries]


def _models_in(obj: Any) -> Iterator[WireModel]:
    """Every wire model reachable from a message (lists, dicts, nested models)."""
    if isinstance(obj, WireModel):
        yield obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _models_in(getattr(obj, f.name))
    elif isinstance(obj, list):
        for x in obj:
            yield from _models_in(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _models_in(x)


def test_corpus_is_large_and_covers_every_channel_and_type() -> None:
    assert len(FRAMES) >= 60
    seen = {(e["channel"], e["type"]) for e in FRAMES}
    for channel in CHANNELS:
        for mtype in ("subscribed", "channel_data", "channel_batch_data"):
            assert (channel, mtype) in seen, (channel, mtype)
    assert {"connected", "error", "unsubscribed"} <= {e["type"] for e in FRAMES}


@pytest.mark.parametrize("entry", FRAMES, ids=_ids(FRAMES))
def test_frame_decodes_exactly_like_from_dict(entry: Dict[str, Any]) -> None:
    raw = frame_text(entry)
    msg = decode_message(raw)
    assert not isinstance(msg, UnknownMessage)
    assert msg.type == entry["type"]
    assert msg.channel == entry["channel"]
    assert msg.is_snapshot == (entry["type"] == "subscribed")
    # Same frame through Model.from_dict for every model: identical message.
    assert msg == reference_decode(raw, received_at=msg.received_at)
    # Every dataclass field is set on the instance built without __init__.
    assert set(vars(msg)) == {f.name for f in dataclasses.fields(msg)}
    # str, bytes and dict input give the same message.
    assert decode_message(raw.encode(), received_at=msg.received_at) == msg
    assert decode_message(json.loads(raw), received_at=msg.received_at) == msg


@pytest.mark.parametrize("entry", FRAMES, ids=_ids(FRAMES))
def test_messages_and_models_round_trip(entry: Dict[str, Any]) -> None:
    msg = decode_message(frame_text(entry))
    assert type(msg).from_dict(msg.to_dict()) == msg
    assert type(msg).from_json(msg.to_json()) == msg
    for model in _models_in(msg):
        cls = type(model)
        assert cls.from_dict(model.to_dict()) == model
        assert decoder_for(cls)(model.to_dict()) == model


@pytest.mark.parametrize("entry", REST, ids=_ids(REST))
def test_rest_bodies_decode_exactly_like_from_dict(entry: Dict[str, Any]) -> None:
    endpoint = entry["endpoint"].split("?", 1)[0]
    body = rest_body(entry)
    if endpoint == "/v4/orders":  # a bare JSON array of orders
        assert isinstance(body, list)
        assert [decoder_for(Order)(o) for o in body] == [Order.from_dict(o) for o in body]
        return
    model = REST_MODELS[endpoint]
    fast = decoder_for(model)(body)
    assert fast == model.from_dict(body)
    assert model.from_dict(fast.to_dict()) == fast


@pytest.mark.parametrize("entry", REST_ERRORS, ids=_ids(REST_ERRORS))
def test_rest_error_bodies_have_the_documented_shape(entry: Dict[str, Any]) -> None:
    body = rest_body(entry)
    assert isinstance(body["errors"][0]["msg"], str)


@pytest.mark.parametrize("entry", MALFORMED, ids=_ids(MALFORMED))
def test_malformed_input_raises_decode_error_only(entry: Dict[str, Any]) -> None:
    raw = raw_bytes(entry)
    expect = entry.get("expect", "DecodeError")
    if expect == "DecodeError":
        with pytest.raises(DecodeError) as info:
            decode_message(raw)
        assert str(info.value)
        # The text form goes through the same path as bytes.
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return
        with pytest.raises(DecodeError):
            decode_message(text)
    elif expect == "UnknownMessage":
        assert isinstance(decode_message(raw), UnknownMessage)
    else:
        assert expect == "accepted"
        msg = decode_message(raw)
        assert isinstance(msg, Message) and not isinstance(msg, UnknownMessage)


def test_decode_error_names_channel_type_and_field() -> None:
    frame = {
        "type": "channel_data",
        "channel": "v4_trades",
        "id": "BTC-USD",
        "message_id": 3,
        "contents": {
            "trades": [
                {
                    "id": "a",
                    "side": "BUY",
                    "size": "1",
                    "price": "1",
                    "createdAt": "2024-01-01T00:00:00.000Z",
                },
                {
                    "id": "b",
                    "side": "BUY",
                    "size": "1",
                    "price": "oops",
                    "createdAt": "2024-01-01T00:00:00.000Z",
                },
            ]
        },
    }
    with pytest.raises(DecodeError) as info:
        decode_message(frame)
    err = info.value
    assert (err.channel, err.type, err.field) == ("v4_trades", "channel_data", "Trade.price")
    assert "'oops'" in str(err) and "v4_trades" in str(err) and "Trade.price" in str(err)


def test_non_frames_raise_decode_error() -> None:
    for bad in (None, 5, 1.5, ["x"], object()):
        with pytest.raises(DecodeError):
            decode_message(bad)


def test_orders_carry_created_at_and_twap_builder_fields_and_ignore_unknown_keys() -> None:
    from datetime import datetime, timezone
    from decimal import Decimal

    from dydx_ws.protocol._messages import SubaccountMessage

    (rest_entry,) = [
        e for e in manifest("rest") if e["file"].endswith("derived-twap-builder-created-at.json")
    ]
    body = rest_body(rest_entry)
    decode = decoder_for(Order)
    twap, suborder, long_term = (decode(o) for o in body)
    assert twap == Order.from_dict(body[0])
    assert twap.created_at == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    assert (twap.order_flags, twap.type.value if twap.type else None) == ("128", "TWAP")
    assert (twap.duration, twap.interval, twap.price_tolerance) == ("600", "60", "0.005")
    assert twap.builder_address == "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4"
    assert twap.fee_ppm == "500" and twap.size == Decimal("0.5")
    assert suborder.order_flags == "256" and suborder.created_at is not None
    assert long_term.created_at == datetime(2026, 3, 1, 12, 0, 1, tzinfo=timezone.utc)
    assert "someFutureField" not in long_term.to_dict()
    (frame_entry,) = [e for e in FRAMES if e["file"].endswith("derived-order-twap-created-at.json")]
    msg = decode_message(frame_text(frame_entry))
    assert isinstance(msg, SubaccountMessage)
    assert msg.orders[0].created_at == twap.created_at
    assert msg.orders[0].total_filled == Decimal("0.15")
