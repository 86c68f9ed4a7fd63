"""Conversation tests pinning protocol.md §1.3-§1.5 and every row of the §2.4 validation table."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import Raw

pytestmark = pytest.mark.timeout(30)
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def keys(text: str) -> list:  # type: ignore[type-arg]
    return list(json.loads(text))


def test_connected_first_with_exact_bytes(client: Callable[..., Raw]) -> None:
    raw = client()
    text = raw.recv_text()
    message = json.loads(text)
    assert keys(text) == ["type", "connection_id", "message_id"]
    assert UUID4.match(message["connection_id"])
    cid = message["connection_id"]
    assert text == f'{{"type":"connected","connection_id":"{cid}","message_id":0}}'
    other = client()
    assert other.connected()["connection_id"] != message["connection_id"]


def test_any_path_is_accepted(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client(emu.ws_url.replace("/v4/ws", "/whatever"))
    assert raw.connected()["message_id"] == 0


def error_of(raw: Raw, payload: Any) -> Dict[str, Any]:
    raw.send(payload if isinstance(payload, str) else json.dumps(payload))
    return raw.recv_type("error")


@pytest.mark.parametrize(
    "payload, text",
    [
        ("not json", "Invalid message: could not parse"),
        # JSON.parse rejects the NaN/Infinity literals that Python's json module accepts
        ("NaN", "Invalid message: could not parse"),
        ('{"type":NaN}', "Invalid message: could not parse"),
        (
            '{"type":"subscribe","channel":"v4_markets","batched":-Infinity}',
            "Invalid message: could not parse",
        ),
        ("null", "Internal error"),
        ("{}", "Invalid message: type is required"),
        ('{"type":""}', "Invalid message: type is required"),
        ('{"type":0}', "Invalid message: type is required"),
        ("5", "Invalid message: type is required"),
        ("[]", "Invalid message: type is required"),
        ('{"type":"i"}', "Invalid message type: i"),
        ('{"type":"pong"}', "Invalid message type: pong"),
        ('{"type":["a","b"]}', "Invalid message type: a,b"),
        ('{"type":{"x":1}}', "Invalid message type: [object Object]"),
        ('{"type":"subscribe"}', "Invalid subscribe message: channel is required"),
        ('{"type":"unsubscribe","channel":""}', "Invalid subscribe message: channel is required"),
        ('{"type":"subscribe","channel":"invalid"}', "Invalid channel: invalid"),
        ('{"type":"subscribe","channel":"V4_TRADES","id":"BTC-USD"}', "Invalid channel: V4_TRADES"),
        ('{"type":"subscribe","channel":"v4_trades"}', "Invalid id: undefined"),
        ('{"type":"subscribe","channel":"v4_trades","id":null}', "Invalid id: null"),
        ('{"type":"subscribe","channel":"v4_orderbook","id":5}', "Invalid id: 5"),
        ('{"type":"unsubscribe","channel":"v4_candles"}', "Invalid id: undefined"),
    ],
)
def test_basic_validation_rows_reuse_current_message_id(
    client: Callable[..., Raw], payload: str, text: str
) -> None:
    raw = client()
    raw.connected()
    frame_text = None
    raw.send(payload)
    while frame_text is None:
        candidate = raw.recv_text()
        if json.loads(candidate)["type"] == "error":
            frame_text = candidate
    message = json.loads(frame_text)
    assert message["message"] == text
    assert keys(frame_text) == ["type", "message", "connection_id", "message_id"]
    assert message["message_id"] == 0  # errors before any counted message repeat 0


def test_errors_repeat_previous_message_id(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    subscribed = raw.recv_type("subscribed")
    assert subscribed["message_id"] == 1
    raw.send({"type": "unsubscribe", "channel": "v4_markets"})
    assert raw.recv_type("unsubscribed")["message_id"] == 2
    first = error_of(raw, {"type": "subscribe", "channel": "nope"})
    second = error_of(raw, {"type": "subscribe", "channel": "nope2"})
    assert first["message_id"] == second["message_id"] == 2


@pytest.mark.parametrize(
    "channel, sub_id",
    [
        ("v4_orderbook", "INVALID-INVALID"),
        ("v4_trades", "btc-usd"),
        ("v4_candles", "BTC-USD"),
        ("v4_candles", "BTC-USD/2MINS"),
        ("v4_subaccounts", "address/128000"),
        ("v4_subaccounts", "address/junk/1"),
        ("v4_subaccounts", "address/abc123"),
        ("v4_subaccounts", "address/123f"),
        ("v4_subaccounts", "address/0x1_0"),  # Number() takes no "_" separators
        ("v4_parent_subaccounts", "address/128"),
    ],
)
def test_row8_invalid_subscription_id_takes_a_new_message_id(
    client: Callable[..., Raw], channel: str, sub_id: str
) -> None:
    raw = client()
    raw.connected()
    message = error_of(raw, {"type": "subscribe", "channel": channel, "id": sub_id})
    assert message["message"] == f"Invalid subscription id for channel: ({channel}-{sub_id})"
    assert message["message_id"] == 1
    assert "channel" not in message and "id" not in message


@pytest.mark.parametrize("sub_id", ["address/", "address/1e2", "address/-1", "address/0x1"])
def test_number_quirks_pass_socks_but_fail_the_fetch(
    client: Callable[..., Raw], sub_id: str
) -> None:
    raw = client()
    raw.connected()
    message = error_of(raw, {"type": "subscribe", "channel": "v4_subaccounts", "id": sub_id})
    text = "Internal error, could not fetch data for subscription: v4_subaccounts."
    assert message["message"] == text
    assert list(message) == ["type", "message", "connection_id", "message_id", "channel", "id"]
    assert message["channel"] == "v4_subaccounts" and message["id"] == sub_id


def test_row11_internal_error_and_row11b_blocked(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    raw.connected()
    emu.fail_subscriptions(1, status=500)
    message = error_of(raw, {"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    assert message["message"] == "Internal error, could not fetch data for subscription: v4_trades."
    assert (message["channel"], message["id"], message["message_id"]) == ("v4_trades", "BTC-USD", 1)
    emu.fail_subscriptions(1, status=403)
    message = error_of(raw, {"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"})
    assert message["message"].startswith("Because this address appears to be a resident of")
    assert message["message"].endswith("this address has been blocked.")
    assert message["channel"] == "v4_trades"
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"})
    assert raw.recv_type("subscribed")["message_id"] == 3


def test_row12_already_subscribed_after_fetch(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_block_height", "id": "v4_block_height"})
    raw.recv_type("subscribed")
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    raw.recv_type("subscribed")
    message = error_of(raw, {"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    assert message["message"] == "Invalid subscribe message: already subscribed (v4_trades-BTC-USD)"
    assert (message["channel"], message["id"]) == ("v4_trades", "BTC-USD")


def test_unknown_subaccount_gets_empty_contents(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    address = "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4"
    raw.send({"type": "subscribe", "channel": "v4_subaccounts", "id": f"{address}/0"})
    text = raw.recv_text()
    while json.loads(text)["type"] != "subscribed":
        text = raw.recv_text()
    assert text.endswith(f',"channel":"v4_subaccounts","id":"{address}/0","contents":{{}}}}')


def test_json_ping_is_ignored_and_binary_frames_work(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "ping", "id": 7})
    raw.ws.send_binary(json.dumps({"type": "subscribe", "channel": "v4_markets"}).encode())
    message = raw.recv()
    assert message["type"] == "subscribed" and message["message_id"] == 1


def test_subscribed_key_orders_and_id_normalisation(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": "ETH-USD"})
    texts = {}
    while len(texts) < 3:
        text = raw.recv_text()
        message = json.loads(text)
        if message["type"] == "subscribed":
            texts[message["channel"]] = text
    assert keys(texts["v4_markets"]) == [
        "type",
        "connection_id",
        "message_id",
        "channel",
        "contents",
    ]
    height = json.loads(texts["v4_block_height"])
    assert keys(texts["v4_block_height"]) == [
        "type",
        "connection_id",
        "message_id",
        "channel",
        "id",
        "contents",
    ]
    assert height["id"] == "v4_block_height"
    assert list(height["contents"]) == ["height", "time"]
    book = json.loads(texts["v4_orderbook"])
    assert list(book["contents"]) == ["bids", "asks"]
    assert [m for m in (json.loads(t)["message_id"] for t in texts.values())] == [1, 2, 3]


def test_markets_with_an_id_is_registered_under_it(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    conn_id = raw.connected()["connection_id"]
    raw.send({"type": "subscribe", "channel": "v4_markets", "id": "foo"})
    message = raw.recv_type("subscribed")
    assert "id" not in message
    assert (conn_id, "v4_markets", "foo") in emu.subscriptions()


def test_channel_data_key_orders_and_versions(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    raw.connected()
    subs = [
        {"type": "subscribe", "channel": "v4_markets"},
        {"type": "subscribe", "channel": "v4_block_height"},
        {"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD"},
        {"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"},
        {"type": "subscribe", "channel": "v4_candles", "id": "BTC-USD/1MIN"},
        {"type": "subscribe", "channel": "v4_subaccounts", "id": f"{emu.demo_address}/0"},
        {"type": "subscribe", "channel": "v4_parent_subaccounts", "id": f"{emu.demo_address}/0"},
    ]
    for sub in subs:
        raw.send(sub)
    versions = {
        "v4_orderbook": "1.0.0",
        "v4_subaccounts": "3.0.0",
        "v4_parent_subaccounts": "3.0.0",
        "v4_trades": "2.1.0",
        "v4_markets": "1.0.0",
        "v4_candles": "1.0.0",
        "v4_block_height": "1.0.0",
    }
    seen: Dict[str, str] = {}
    last_id = 0
    while len(seen) < len(subs):
        text = raw.recv_text(timeout=20)
        message = json.loads(text)
        if message["type"] != "channel_data":
            continue
        assert message["message_id"] > last_id  # no regression once all subscribed lines are in
        last_id = message["message_id"]
        seen.setdefault(message["channel"], text)
    for channel, text in seen.items():
        message = json.loads(text)
        assert message["version"] == versions[channel]
        expected = ["type", "connection_id", "message_id", "id", "channel", "version", "contents"]
        if channel == "v4_markets":
            expected.remove("id")
        if channel == "v4_parent_subaccounts":
            expected.append("subaccountNumber")
            assert message["subaccountNumber"] in (0, 128)
        assert keys(text) == expected, channel
    assert list(json.loads(seen["v4_block_height"])["contents"]) == ["blockHeight", "time"]
    trade = json.loads(seen["v4_trades"])["contents"]["trades"][0]
    assert list(trade) == ["id", "size", "price", "side", "createdAt", "type"]
    assert re.match(r"^[0-9a-f]{24}$", trade["id"])
    candle = json.loads(seen["v4_candles"])["contents"]
    assert isinstance(candle, dict) and candle["resolution"] == "1MIN"
    update = json.loads(seen["v4_orderbook"])["contents"]
    assert len(update) == 1 and len(next(iter(update.values()))) == 1


def test_unsubscribe_semantics(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "unsubscribe", "channel": "v4_trades", "id": "ETH-USD"})
    text = raw.recv_text()
    assert keys(text) == ["type", "connection_id", "message_id", "channel", "id"]
    assert json.loads(text)["message_id"] == 1 and json.loads(text)["id"] == "ETH-USD"
    raw.send({"type": "unsubscribe", "channel": "v4_markets", "id": "ignored"})
    assert "id" not in raw.recv_type("unsubscribed")
    raw.send({"type": "unsubscribe", "channel": "v4_block_height"})
    assert "id" not in raw.recv_type("unsubscribed")
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    raw.recv_type("subscribed")
    assert len(emu.subscriptions()) == 1
    raw.send({"type": "unsubscribe", "channel": "v4_trades", "id": "BTC-USD"})
    unsub = raw.recv_type("unsubscribed")
    assert unsub["message_id"] >= 5
    assert emu.subscriptions() == []
    # after the unsubscribed reply nothing more arrives for that topic
    assert raw.quiet(0.3)


def test_row13_handler_exception_is_internal_error(
    emu: IndexerEmulator, client: Callable[..., Raw], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = client()
    raw.connected()

    def boom(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(emu.socks, "_unsubscribe", boom)
    message = error_of(raw, {"type": "unsubscribe", "channel": "v4_markets"})
    assert message["message"] == "Internal error"
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    assert raw.recv_type("subscribed")["type"] == "subscribed"
