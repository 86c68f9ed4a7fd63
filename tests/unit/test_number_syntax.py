"""Money and size fields accept only the Indexer's number syntax, in the fast decoders and in
``Model.from_dict`` alike; anything else is a DecodeError naming the field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict

import pytest

from dydx_ws import DecodeError, decode_message
from dydx_ws.models import PerpetualMarket, PriceLevel
from dydx_ws.models._base import parse_decimal
from dydx_ws.protocol._decode import reference_decode

ODD = [
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1_000",
    " 1",
    "1 ",
    "\t1",
    "1\n",
    "+1",
    ".5",
    "5.",
    "",
    "-",
    "1e",
    "1e99999",
    "0x10",
    "١٢",  # Arabic-Indic digits
    "\uff11",  # fullwidth digit one
    "1.5.2",
]
GOOD = ["0", "-0", "100", "0.000019216", "-12.5", "65000.10", "1e-8", "1.5E+3", "007"]


def book_frame(contents: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "type": "channel_data",
        "connection_id": "c",
        "message_id": 3,
        "channel": "v4_orderbook",
        "id": "BTC-USD",
        "version": "1.0.0",
        "contents": contents,
    }


@pytest.mark.parametrize("text", ODD)
def test_an_odd_number_in_an_update_pair_is_a_decode_error_naming_the_field(text: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_message(json.dumps(book_frame({"bids": [["100", "1"], ["99", text]]})))
    assert err.value.field == "PriceLevel.size"
    with pytest.raises(DecodeError) as err:
        decode_message(json.dumps(book_frame({"asks": [[text, "1"]]})))
    assert err.value.field == "PriceLevel.price"
    with pytest.raises(DecodeError):
        reference_decode(json.dumps(book_frame({"asks": [[text, "1"]]})))


@pytest.mark.parametrize("text", ODD)
def test_an_odd_number_in_a_model_is_refused_by_both_decoders(text: str) -> None:
    frame = {
        "type": "subscribed",
        "connection_id": "c",
        "message_id": 1,
        "channel": "v4_orderbook",
        "id": "BTC-USD",
        "contents": {"bids": [{"price": "100", "size": text}], "asks": []},
    }
    with pytest.raises(DecodeError) as err:
        decode_message(json.dumps(frame))
    assert err.value.field == "PriceLevel.size"
    with pytest.raises(DecodeError):
        reference_decode(json.dumps(frame))
    with pytest.raises((ValueError, TypeError)):
        PriceLevel.from_dict({"price": "1", "size": text})
    with pytest.raises((ValueError, TypeError)):  # an optional, renamed field too
        PerpetualMarket.from_dict({"ticker": "BTC-USD", "priceChange24H": text})


@pytest.mark.parametrize("text", GOOD)
def test_the_indexer_syntax_decodes_the_same_on_both_paths(text: str) -> None:
    raw = json.dumps(book_frame({"bids": [[text, text]], "asks": [{"price": text, "size": "1"}]}))
    fast, ref = decode_message(raw, received_at=1.0), reference_decode(raw, received_at=1.0)
    assert fast == ref
    assert fast.bids[0].price == Decimal(text)  # type: ignore[attr-defined]
    assert PerpetualMarket.from_dict({"ticker": "X", "oraclePrice": text}).oracle_price == Decimal(
        text
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), True])
def test_non_finite_json_numbers_and_bools_are_refused(value: Any) -> None:
    # json.loads (the fallback backend) turns the literals NaN and Infinity into floats
    with pytest.raises(DecodeError):
        decode_message(book_frame({"bids": [["100", value]]}))
    with pytest.raises(DecodeError):
        decode_message(book_frame({"bids": [{"price": "100", "size": value}]}))
    with pytest.raises((ValueError, TypeError)):
        parse_decimal(value)


def test_finite_json_numbers_are_still_tolerated() -> None:
    assert parse_decimal(5) == Decimal(5)
    assert parse_decimal(0.1) == Decimal("0.1")
    msg = decode_message(book_frame({"bids": [[100, 0.5]]}))
    assert msg.bids[0].size == Decimal("0.5")  # type: ignore[attr-defined]
    assert decode_message(book_frame({"bids": [[100, 0.5]]}), received_at=1.0) == reference_decode(
        book_frame({"bids": [[100, 0.5]]}), received_at=1.0
    )
