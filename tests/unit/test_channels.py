"""The channel table (docs/protocol.md §2.6, §3.0, §4.4): ids built and parsed back for every
channel, the id the server echoes, limits, statefulness and message classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from dydx_ws.protocol._channels import (
    CHANNEL_TABLE,
    CHANNELS,
    STATEFUL,
    Topic,
    channel,
    find,
    frame_id,
    sent_id,
)
from dydx_ws.protocol._decode import decode_message

FRAMES = Path(__file__).resolve().parents[1] / "fixtures" / "frames"
ADDRESS = "dydx1nzuttarf5k2j0nug5yzhr6p74t9avehn9hlh8m"

# Subscribe parameters -> wire id, one case per channel (docs/protocol.md §3.0).
CASES: Dict[str, Any] = {
    "v4_trades": ({"ticker": "BTC-USD"}, "BTC-USD"),
    "v4_orderbook": ({"ticker": "ETH-USD"}, "ETH-USD"),
    "v4_candles": ({"ticker": "BTC-USD", "resolution": "15MINS"}, "BTC-USD/15MINS"),
    "v4_markets": ({}, None),
    "v4_subaccounts": ({"address": ADDRESS, "subaccount_number": 127999}, f"{ADDRESS}/127999"),
    "v4_parent_subaccounts": ({"address": ADDRESS, "subaccount_number": 0}, f"{ADDRESS}/0"),
    "v4_block_height": ({}, None),
}


def test_the_table_has_the_seven_channels_of_the_protocol() -> None:
    assert set(CHANNELS) == set(CASES)
    assert len(CHANNELS) == 7
    for name, spec in CHANNEL_TABLE.items():
        assert spec.name == name
        assert channel(name) is spec
        assert find(name) is spec
    assert find("v4_nothing") is None and find(None) is None and find(3) is None
    with pytest.raises(KeyError):
        channel("v4_nothing")


@pytest.mark.parametrize("name", list(CASES))
def test_build_and_parse_round_trip(name: str) -> None:
    params, wire_id = CASES[name]
    spec = channel(name)
    assert spec.build_id(params) == wire_id
    assert spec.has_id is (wire_id is not None)
    if wire_id is None:
        with pytest.raises(ValueError, match="has no id"):
            spec.parse_id("anything")
    else:
        assert spec.parse_id(wire_id) == params
        assert spec.build_id(spec.parse_id(wire_id)) == wire_id


def test_build_ignores_parameters_that_are_not_part_of_the_id() -> None:
    assert channel("v4_trades").build_id({"ticker": "BTC-USD", "backfill": True}) == "BTC-USD"


@pytest.mark.parametrize(
    ("name", "wire_id"),
    [
        ("v4_candles", "BTC-USD"),
        ("v4_subaccounts", ADDRESS),
        ("v4_subaccounts", f"{ADDRESS}/x"),
        ("v4_subaccounts", "/0"),
        ("v4_parent_subaccounts", f"{ADDRESS}/-1"),
        ("v4_parent_subaccounts", f"{ADDRESS}/\u00b2"),  # a digit to str.isdigit, not to int()
    ],
)
def test_ids_of_the_wrong_shape_are_refused(name: str, wire_id: str) -> None:
    with pytest.raises(ValueError, match=f"{name} id must be"):
        channel(name).parse_id(wire_id)


def test_a_candle_id_with_extra_parts_keeps_them_in_the_resolution() -> None:
    # the server accepts such an id but never feeds it (§2.6): parsing must not hide the extra
    assert channel("v4_candles").parse_id("BTC-USD/1MIN/x")["resolution"] == "1MIN/x"


@pytest.mark.parametrize(
    ("name", "sent", "echoed"),
    [
        ("v4_markets", None, None),  # frames for markets carry no id at all
        ("v4_markets", "v4_markets", None),  # the normalised id quoted in error texts
        ("v4_block_height", None, "v4_block_height"),
        ("v4_block_height", "v4_block_height", "v4_block_height"),
        ("v4_trades", "BTC-USD", "BTC-USD"),
        ("v4_candles", "BTC-USD/1MIN", "BTC-USD/1MIN"),
        ("v4_subaccounts", f"{ADDRESS}/0", f"{ADDRESS}/0"),
    ],
)
def test_frame_id_is_the_id_the_server_echoes(
    name: str, sent: Optional[str], echoed: Optional[str]
) -> None:
    assert channel(name).frame_id(sent) == echoed
    assert frame_id(name, sent) == echoed


@pytest.mark.parametrize("name", list(CASES))
def test_topic_keys_and_subscribe_texts_follow_the_table(name: str) -> None:
    params, wire_id = CASES[name]
    topic = Topic(name, channel(name).build_id(params), False)
    assert topic.key == (name, channel(name).frame_id(wire_id))
    sent = json.loads(topic.subscribe_text())
    assert ("id" in sent) is channel(name).has_id  # never an id for markets or block height
    assert channel(name).sent_id(topic.key[1]) == wire_id  # and back from the key


def test_unknown_channels_pass_ids_through() -> None:
    assert frame_id("v4_nothing", "x") == "x"
    assert sent_id("v4_nothing", "x") == "x"
    assert sent_id("v4_block_height", "v4_block_height") is None


def test_limits_and_state_are_those_of_the_protocol() -> None:
    limits = {name: spec.limit for name, spec in CHANNEL_TABLE.items()}
    assert limits == {
        "v4_markets": 32,
        "v4_trades": 32,
        "v4_orderbook": 32,
        "v4_candles": 32,
        "v4_subaccounts": 256,
        "v4_parent_subaccounts": 256,
        "v4_block_height": 1,
    }
    assert {"v4_orderbook", "v4_markets", "v4_subaccounts", "v4_parent_subaccounts"} == STATEFUL
    assert all(spec.batched for spec in CHANNEL_TABLE.values())


@pytest.mark.parametrize("name", list(CASES))
def test_message_class_is_what_the_decoder_makes(name: str) -> None:
    path = sorted(FRAMES.glob(f"{name}__subscribed__*.json"))[0]
    msg = decode_message(path.read_text())
    assert type(msg) is channel(name).message_class
    assert msg.id == channel(name).frame_id(msg.id)  # real frames carry the echoed id
