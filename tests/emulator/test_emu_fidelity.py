"""Where the emulator was matched to the real server (docs/protocol.md): error frame shapes,
subaccount 404s, the heartbeat close handshake, the silent stop, REST route limits, and bad
arguments to the emulator's own API."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Union

import pytest
import requests
import websocket

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import NoPongWebSocket, Raw
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


class SilentWebSocket(NoPongWebSocket):
    """Answers neither pings nor the server's close frame (a client whose reads are stuck)."""

    def send_close(self, status: int = 1000, reason: Union[bytes, str] = b"") -> None:
        return None


def test_duplicate_markets_error_has_no_id(client: Callable[..., Raw]) -> None:
    raw = client()
    connected = raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    raw.recv_type("subscribed")
    raw.send({"type": "subscribe", "channel": "v4_markets"})  # the 2nd within 1 s: allowed
    text = raw.recv_until(lambda m: m["type"] == "error")
    assert text == {
        "type": "error",
        "message": "Invalid subscribe message: already subscribed (v4_markets-v4_markets)",
        "connection_id": connected["connection_id"],
        "message_id": text["message_id"],
        "channel": "v4_markets",
    }
    assert list(text) == ["type", "message", "connection_id", "message_id", "channel"]


def test_duplicate_trades_error_keeps_channel_and_id(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"})
    raw.recv_type("subscribed")
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"})
    error = raw.recv_type("error")
    assert (error["channel"], error["id"]) == ("v4_trades", "ETH-USD")


@pytest.mark.parametrize("kind", ["unknown", "bad_checksum", "not_bech32"])
def test_unknown_subaccount_is_subscribed_with_empty_contents(
    emu: IndexerEmulator, client: Callable[..., Raw], kind: str
) -> None:
    demo = emu.demo_address
    address = {
        "unknown": "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4",
        "bad_checksum": demo[:-1] + ("q" if demo[-1] != "q" else "p"),
        "not_bech32": "foo",
    }[kind]
    raw = client()
    connected = raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_subaccounts", "id": f"{address}/0"})
    assert raw.recv_text() == (
        f'{{"type":"subscribed","connection_id":"{connected["connection_id"]}","message_id":1,'
        f'"channel":"v4_subaccounts","id":"{address}/0","contents":{{}}}}'
    )
    status = requests.get(f"{emu.rest_url}/v4/addresses/{address}/subaccountNumber/0", timeout=5)
    assert status.status_code == 404


def test_address_of_wrong_shape_fails_the_fetch(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_subaccounts", "id": f"{'a' * 91}/0"})
    error = raw.recv_type("error")
    assert error["message"] == (
        "Internal error, could not fetch data for subscription: v4_subaccounts."
    )


def _wait_for_close_frame(ws: websocket.WebSocket) -> bytes:
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return bytes(frame.data)


def _tcp_open_for(sock: socket.socket, seconds: float) -> bool:
    """True if the peer neither closed nor reset the TCP connection within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except socket.timeout:
        return True
    except OSError:
        return False


def test_heartbeat_close_keeps_tcp_until_the_client_answers(
    make_emu: Callable[..., IndexerEmulator],
) -> None:
    emu = make_emu(heartbeat_interval=0.2, heartbeat_timeout=0.3, heartbeat_close_timeout=20.0)
    ws = websocket.create_connection(emu.ws_url, timeout=5, class_=SilentWebSocket)
    try:
        data = _wait_for_close_frame(ws)
        assert (int.from_bytes(data[:2], "big"), data[2:]) == (1011, b"Heartbeat timeout")
        assert _tcp_open_for(ws.sock, 1.5)  # the server waits for our answer
        assert emu.connection_count() == 1
        websocket.WebSocket.send_close(ws, websocket.STATUS_NORMAL)
        started = time.monotonic()
        assert not _tcp_open_for(ws.sock, 5.0)  # answered: the server closes TCP at once
        assert time.monotonic() - started < 3.0
        ws.shutdown()
        wait_until(lambda: emu.connection_count() == 0)
    finally:
        ws.shutdown()


def test_heartbeat_close_wait_is_bounded(make_emu: Callable[..., IndexerEmulator]) -> None:
    emu = make_emu(heartbeat_interval=0.2, heartbeat_timeout=0.3, heartbeat_close_timeout=0.5)
    ws = websocket.create_connection(emu.ws_url, timeout=5, class_=SilentWebSocket)
    try:
        _wait_for_close_frame(ws)
        started = time.monotonic()
        assert not _tcp_open_for(ws.sock, 10.0)
        assert 0.3 <= time.monotonic() - started < 5.0
    finally:
        ws.shutdown()


def test_drop_connections_1006_aborts_tcp(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    assert emu.drop_connections(code=1006) == 1
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            opcode, _ = raw.frame()
            assert opcode != websocket.ABNF.OPCODE_CLOSE
    wait_until(lambda: emu.connection_count() == 0)


@pytest.mark.parametrize("code", [1005, 1015, 1004, 999, 0, -1, 5000, 2000, 1016, True, "1000"])
def test_drop_connections_rejects_codes_no_close_frame_carries(
    emu: IndexerEmulator, client: Callable[..., Raw], code: Any
) -> None:
    raw = client()
    raw.connected()
    with pytest.raises(ValueError):
        emu.drop_connections(code=code)
    assert emu.connection_count() == 1  # nothing happened
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    assert raw.recv_type("subscribed")


def test_drop_connections_rejects_a_long_reason(emu: IndexerEmulator) -> None:
    with pytest.raises(ValueError):
        emu.drop_connections(code=1011, reason="x" * 124)
    assert emu.drop_connections(code=4000, reason="x" * 123) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.stall(-1),
        lambda e: e.stall(float("nan")),
        lambda e: e.reject_handshakes(-1),
        lambda e: e.reject_handshakes(1, status=200),
        lambda e: e.reject_rest(1, status=99),
        lambda e: e.set_rest_rate_limit(0),
        lambda e: e.set_rest_rate_limit(10, seconds=0),
        lambda e: e.set_route_rate_limit("orders", 10),
        lambda e: e.set_snapshot_delay(-0.5),
        lambda e: e.fail_subscriptions(-1),
        lambda e: e.fail_subscriptions(1, status=200),
        lambda e: e.advance(-1),
        lambda e: e.send_raw(b"{}"),
        lambda e: e.inject_crossed_level("DOGE-USD"),
        lambda e: e.inject_crossed_level(side="buy"),
        lambda e: e.silent_delete_level("DOGE-USD"),
        lambda e: e.stop_publishing("v4_nope"),
        lambda e: e.stop_publishing("v4_trades", 5),
        lambda e: e.flush(timeout=-1),
        lambda e: e.set_crossed_levels("yes"),
        lambda e: e.set_silent_deletions(1),
        lambda e: e.rest_get("v4/height"),
    ],
)
def test_bad_arguments_raise_value_error(
    emu: IndexerEmulator, call: Callable[[IndexerEmulator], Any]
) -> None:
    with pytest.raises(ValueError):
        call(emu)
    assert emu.height > 0  # the emulator still runs


def test_stop_publishing_keeps_subscription_and_connection(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.recv_type("subscribed")
    raw.recv_type("channel_data", channel="v4_block_height")
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    raw.recv_type("subscribed", channel="v4_trades")
    assert emu.stop_publishing("v4_block_height") == 1
    emu.flush()
    heights = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            message = raw.recv(max(0.01, deadline - time.monotonic()))
        except websocket.WebSocketTimeoutException:
            break
        heights += message["channel"] == "v4_block_height"
    assert heights == 0
    assert emu.connection_count() == 1
    subs = [(c, i) for _, c, i in emu.subscriptions()]
    assert ("v4_block_height", "v4_block_height") in subs  # still registered server-side
    assert emu.stats()["publishing_stopped"] == 1
    # a fresh subscribe streams again
    raw.send({"type": "unsubscribe", "channel": "v4_block_height"})
    raw.recv_type("unsubscribed")
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.recv_type("subscribed", channel="v4_block_height")
    raw.recv_type("channel_data", channel="v4_block_height")


def test_stop_publishing_of_one_id(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    for ticker in ("BTC-USD", "ETH-USD"):
        raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": ticker, "batched": True})
        raw.recv_type("subscribed", id=ticker)
    assert emu.stop_publishing("v4_orderbook", "BTC-USD") == 1
    emu.flush()
    seen = set()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            message = raw.recv(max(0.01, deadline - time.monotonic()))
        except websocket.WebSocketTimeoutException:
            break
        seen.add(message["id"])
    assert seen == {"ETH-USD"}


def test_orders_route_limit_429_with_retry_after(make_emu: Callable[..., IndexerEmulator]) -> None:
    emu = make_emu(route_rate_limits={"/v4/orders": (3, 10.0), "/v4/fills": (3, 10.0)})
    http = requests.Session()
    url = f"{emu.rest_url}/v4/orders?address={emu.demo_address}&subaccountNumber=0"
    statuses = [http.get(url, timeout=5) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited = statuses[-1]
    assert limited.json() == {"errors": [{"msg": "Too many requests"}]}
    assert 0 < int(limited.headers["Retry-After"]) <= 10_000  # milliseconds, as comlink
    assert limited.headers["RateLimit-Limit"] == "3"
    # other routes are not affected; the parent-orders route shares the limit
    assert http.get(f"{emu.rest_url}/v4/height", timeout=5).status_code == 200
    parent = f"{emu.rest_url}/v4/orders/parentSubaccountNumber?address={emu.demo_address}"
    assert http.get(parent + "&parentSubaccountNumber=0", timeout=5).status_code == 429
    http.close()


def test_default_route_limit_is_100_per_10_seconds(emu: IndexerEmulator) -> None:
    http = requests.Session()
    url = f"{emu.rest_url}/v4/orders?address={emu.demo_address}&subaccountNumber=0"
    codes = [http.get(url, timeout=5).status_code for _ in range(101)]
    assert codes[:100] == [200] * 100 and codes[100] == 429
    emu.set_route_rate_limit("/v4/orders", None)
    assert http.get(url, timeout=5).status_code == 200
    http.close()


@pytest.mark.parametrize(
    "options",
    [
        {"markets": []},
        {"block_time": 0},
        {"heartbeat_interval": -1},
        {"heartbeat_timeout": float("nan")},
        {"fetch_latency": -0.1},
        {"heartbeat_close_timeout": "30"},
        {"subscribe_points": 0},
        {"channel_limits": {"v4_trades": 0}},
        {"channel_limits": {"v4_nope": 3}},
        {"route_rate_limits": {"/v4/orders": (0, 10.0)}},
        {"route_rate_limits": {"/v4/orders": 100}},
        {"rest_rate_limit": (100, 0)},
    ],
)
def test_bad_settings_raise_value_error_at_construction(options: Any) -> None:
    with pytest.raises(ValueError):
        IndexerEmulator(**options)
