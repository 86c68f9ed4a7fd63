"""Rate limits (invalid messages, subscribes) and per-connection channel limits (§4.3, §4.4)."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List

import pytest
import websocket

from dydx_ws.emulator import EmulatorConfig, IndexerEmulator
from dydx_ws.emulator.config import DEFAULT_CHANNEL_LIMITS
from dydx_ws.emulator.ratelimit import FixedWindowLimiter
from tests.helpers.raw_ws import Raw

pytestmark = pytest.mark.timeout(60)
RATE_LIMITED = '{"message":"Rate limited"}'


def drain_types(raw: Raw, count: int) -> List[Dict[str, Any]]:
    """The next ``count`` non-data messages."""
    out: List[Dict[str, Any]] = []
    while len(out) < count:
        message = raw.recv()
        if message["type"] not in ("channel_data", "channel_batch_data"):
            out.append(message)
    return out


def test_third_invalid_frame_closes_with_1008(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send("{")
    raw.send({"type": "nope"})
    raw.send({})
    messages = drain_types(raw, 3)
    assert [m["message"] for m in messages] == [
        "Invalid message: could not parse",
        "Invalid message type: nope",
        "Too many invalid messages. Please reconnect and try again.",
    ]
    assert [m["message_id"] for m in messages] == [0, 0, 0]
    assert raw.expect_close() == (1008, RATE_LIMITED)


def test_validation_rows_5_to_7_are_not_rate_limited(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    for _ in range(6):
        raw.send({"type": "subscribe", "channel": "bogus"})
        raw.send({"type": "subscribe", "channel": "v4_trades"})
    messages = drain_types(raw, 12)
    assert {m["message"] for m in messages} == {"Invalid channel: bogus", "Invalid id: undefined"}
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    assert raw.recv_type("subscribed")["message_id"] == 1


def test_invalid_window_expires(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(invalid_window=0.2)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send("{")
    raw.send("{")
    drain_types(raw, 2)
    # let the 0.2 s window expire (time passing, not synchronisation): the next invalid frame
    # starts a new window instead of being the third hit
    time.sleep(0.3)
    raw.send("{")
    assert raw.recv_type("error")["message"] == "Invalid message: could not parse"
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    assert raw.recv_type("subscribed")


def test_rate_limit_can_be_disabled(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(rate_limit_enabled=False)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    for _ in range(5):
        raw.send("{")
        raw.send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    messages = drain_types(raw, 10)
    assert not any(m["message"].startswith("Too many") for m in messages if m["type"] == "error")


def send_together(raw: Raw, messages: List[Dict[str, Any]]) -> None:
    """Frames in one TCP write, so the server reads them as one burst."""
    data = b"".join(
        websocket.ABNF.create_frame(json.dumps(m), websocket.ABNF.OPCODE_TEXT).format()
        for m in messages
    )
    raw.ws.sock.sendall(data)


def test_third_subscribe_to_the_same_topic_closes(client: Callable[..., Raw]) -> None:
    """The real server answers a burst only with the rate-limit error: the replies to the first
    two wait for their snapshot fetch, and by then the socket is closing."""
    raw = client()
    connected = raw.connected()
    send_together(raw, [{"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"}] * 3)
    assert raw.recv_text() == (
        '{"type":"error","message":"Too many subscribe attempts for channel v4_trades-BTC-USD. '
        'Please  reconnect and try again.","connection_id":"'
        + connected["connection_id"]
        + '","message_id":3}'
    )
    assert raw.expect_close() == (1008, RATE_LIMITED)  # nothing else before the close frame


def test_subscribe_limit_is_keyed_by_normalised_id_and_ignores_unsubscribes(
    client: Callable[..., Raw],
) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.recv_type("subscribed")
    raw.send({"type": "unsubscribe", "channel": "v4_block_height"})
    raw.recv_type("unsubscribed")
    raw.send({"type": "subscribe", "channel": "v4_block_height", "id": "v4_block_height"})
    raw.recv_type("subscribed")
    raw.send({"type": "unsubscribe", "channel": "v4_block_height"})
    raw.recv_type("unsubscribed")
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    messages = drain_types(raw, 1)
    assert messages[0]["type"] == "error"
    assert messages[-1]["message"].startswith(
        "Too many subscribe attempts for channel v4_block_height-v4_block_height."
    )
    assert raw.expect_close()[0] == 1008


def test_many_different_topics_in_a_burst_are_fine(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    resolutions = ["1MIN", "5MINS", "15MINS", "30MINS", "1HOUR", "4HOURS", "1DAY"]
    ids = [f"{m}/{r}" for m in ("BTC-USD", "ETH-USD") for r in resolutions]
    for sub_id in ids:
        raw.send({"type": "subscribe", "channel": "v4_candles", "id": sub_id})
    messages = drain_types(raw, len(ids))
    assert sorted(m["id"] for m in messages if m["type"] == "subscribed") == sorted(ids)


def test_per_connection_channel_limit_keeps_the_connection(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    for i in range(33):
        raw.send({"type": "subscribe", "channel": "v4_markets", "id": f"m{i}"})
    messages = drain_types(raw, 33)
    assert sum(m["type"] == "subscribed" for m in messages) == 32
    (error,) = [m for m in messages if m["type"] == "error"]
    assert error["message"] == (
        "Per-connection subscription limit reached for v4_markets (limit=32)."
    )
    assert error["message_id"] == 33
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"})
    assert raw.recv_type("subscribed", channel="v4_trades")["message_id"] == 34


def test_subaccount_limit_is_256(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    address = "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4"
    for i in range(257):
        raw.send({"type": "subscribe", "channel": "v4_subaccounts", "id": f"{address}/{i}"})
    messages = drain_types(raw, 257)
    assert sum(m["type"] == "subscribed" for m in messages) == 256
    assert next(m for m in messages if m["type"] == "error")["message"] == (
        "Per-connection subscription limit reached for v4_subaccounts (limit=256)."
    )


def test_block_height_limit_beats_already_subscribed(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.recv_type("subscribed")
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    error = raw.recv_type("error")
    assert error["message"] == (
        "Per-connection subscription limit reached for v4_block_height (limit=1)."
    )
    assert "channel" not in error


def test_in_flight_subscribes_count_toward_the_limit(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(snapshot_delay=0.4)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.send({"type": "subscribe", "channel": "v4_block_height", "id": "other"})
    first, second = drain_types(raw, 2)
    assert first["type"] == "error" and first["message_id"] == 2
    assert "limit=1" in first["message"]
    assert second["type"] == "subscribed" and second["message_id"] == 1


def test_channel_limits_are_configurable(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(channel_limits={"v4_trades": 1})
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"})
    (error,) = [m for m in drain_types(raw, 2) if m["type"] == "error"]
    assert error["message"] == "Per-connection subscription limit reached for v4_trades (limit=1)."
    raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": "ETH-USD"})
    assert raw.recv_type("subscribed", channel="v4_orderbook")  # other channels keep defaults


def test_limiter_is_a_fixed_window_and_prunes_expired_keys() -> None:
    now = [0.0]
    limiter = FixedWindowLimiter(2, 1.0, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [False, False, True]
    now[0] = 0.999
    assert limiter.hit("a")  # still the window that started at 0.0
    now[0] = 1.0
    assert not limiter.hit("a")  # a new window starts at the first hit after expiry
    for i in range(FixedWindowLimiter.PRUNE_AT + 10):
        limiter.hit(f"key{i}")
    assert len(limiter) > FixedWindowLimiter.PRUNE_AT
    now[0] = 5.0
    limiter.hit("fresh")
    assert len(limiter) == 1  # every expired window was dropped


def test_partial_channel_limits_keep_the_other_defaults() -> None:
    emu = IndexerEmulator(channel_limits={"v4_orderbook": 2})
    assert emu.config.channel_limits == {**DEFAULT_CHANNEL_LIMITS, "v4_orderbook": 2}
    config = EmulatorConfig(channel_limits={"v4_trades": 1})
    assert config.channel_limits["v4_subaccounts"] == 256
    assert config.channel_limits["v4_block_height"] == 1
    assert config.channel_limits["v4_trades"] == 1
    assert EmulatorConfig().channel_limits == DEFAULT_CHANNEL_LIMITS


@pytest.mark.parametrize(
    ("limits", "text"),
    [
        ({"v4_foo": 2}, "channel_limits: unknown channel 'v4_foo'; one of v4_orderbook"),
        ({"v4_trades": 0}, "channel_limits['v4_trades'] must be an integer >= 1, got 0"),
        ({"v4_trades": True}, "must be an integer >= 1, got True"),
        ({"v4_trades": "3"}, "must be an integer >= 1, got '3'"),
        ([("v4_trades", 3)], "channel_limits must be a dict of channel -> limit"),
    ],
)
def test_bad_channel_limits_raise(limits: Any, text: str) -> None:
    with pytest.raises(ValueError) as info:
        IndexerEmulator(channel_limits=limits)
    assert text in str(info.value)


def test_limit_counts_registered_and_in_flight_subscribes_of_the_connection(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    """socks' per-connection counter: +1 at every subscribe, -1 when it fails (any row of
    §2.4) or is unsubscribed; over the limit -> the error (no ``channel``/``id``), no close."""
    emu = make_emu(channel_limits={"v4_orderbook": 3})
    emu.list_market("SOL-USD")
    emu.list_market("AVAX-USD")
    raw = raw_clients(emu.ws_url)
    raw.connected()
    limit_text = "Per-connection subscription limit reached for v4_orderbook (limit=3)."

    def reply(sub_id: str) -> Dict[str, Any]:
        raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": sub_id})
        (message,) = drain_types(raw, 1)
        return message

    assert reply("NOPE-USD")["message"] == (
        "Invalid subscription id for channel: (v4_orderbook-NOPE-USD)"
    )
    emu.fail_subscriptions(1)
    assert reply("BTC-USD")["message"].startswith("Internal error, could not fetch data")
    assert reply("BTC-USD")["type"] == "subscribed"
    assert reply("ETH-USD")["type"] == "subscribed"
    duplicate = reply("ETH-USD")  # counted while in flight, then given back
    assert duplicate["message"] == (
        "Invalid subscribe message: already subscribed (v4_orderbook-ETH-USD)"
    )
    assert reply("SOL-USD")["type"] == "subscribed"  # the failures left no count behind
    refused = reply("AVAX-USD")
    assert refused["message"] == limit_text
    assert set(refused) == {"type", "message", "connection_id", "message_id"}
    # at the limit a duplicate is counted first, so it gets the limit error (as in socks)
    assert reply("BTC-USD")["message"] == limit_text
    raw.send({"type": "unsubscribe", "channel": "v4_orderbook", "id": "ETH-USD"})
    assert drain_types(raw, 1)[0]["type"] == "unsubscribed"
    assert reply("AVAX-USD")["type"] == "subscribed"  # the unsubscribe freed a place
    # refused before the rate limiter (row 9 before row 10): this third ETH-USD attempt within
    # the second is only refused, not rate limited
    assert reply("ETH-USD")["message"] == limit_text
    other = raw_clients(emu.ws_url)  # the count is per connection
    other.connected()
    other.send({"type": "subscribe", "channel": "v4_orderbook", "id": "ETH-USD"})
    assert other.recv_type("subscribed", channel="v4_orderbook")["id"] == "ETH-USD"
    raw.recv_type("channel_data", channel="v4_orderbook")  # still open and streaming
    assert emu.connection_count() == 2
