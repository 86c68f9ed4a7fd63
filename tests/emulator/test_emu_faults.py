"""Heartbeat, close codes and the connection-level faults (stall, drop, reject, raw frames)."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import pytest
import websocket

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import Raw
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def test_server_sends_empty_ping_frames(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(heartbeat_interval=0.2, heartbeat_timeout=1.0)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    pings = 0
    deadline = time.monotonic() + 5
    while pings < 3 and time.monotonic() < deadline:
        opcode, data = raw.frame()
        if opcode == websocket.ABNF.OPCODE_PING:
            assert data == b""
            pings += 1
    assert pings == 3
    assert emu.connection_count() == 1  # the library answered every ping


def test_no_pong_closes_with_1011(make_emu: Callable[..., IndexerEmulator]) -> None:
    emu = make_emu(heartbeat_interval=0.2, heartbeat_timeout=0.3)
    raw = Raw(emu.ws_url, answer_pings=False)
    try:
        raw.connected()
        started = time.monotonic()
        pings = 0
        while True:
            opcode, data = raw.frame()
            if opcode == websocket.ABNF.OPCODE_PING:
                pings += 1
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
        assert pings == 1
        assert (int.from_bytes(data[:2], "big"), data[2:]) == (1011, b"Heartbeat timeout")
        assert 0.45 <= time.monotonic() - started < 3
        raw.ws.shutdown()
        wait_until(lambda: emu.connection_count() == 0)
    finally:
        raw.close()


def test_answering_pings_keeps_the_connection(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(heartbeat_interval=0.1, heartbeat_timeout=0.1)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    pings = 0
    while pings < 8:
        opcode, _ = raw.frame()
        pings += opcode == websocket.ABNF.OPCODE_PING
    assert emu.connection_count() == 1


def test_client_pings_are_answered(client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.ws.ping("hello")
    while True:
        opcode, data = raw.frame()
        if opcode == websocket.ABNF.OPCODE_PONG:
            assert data == b"hello"
            break


def test_stop_closes_with_1012(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    emu.stop()
    assert raw.expect_close() == (1012, '{"message":"Service restarting"}')


@pytest.mark.parametrize("code", [1011, 1001, 4000])
def test_drop_connections_with_code(
    emu: IndexerEmulator, client: Callable[..., Raw], code: int
) -> None:
    first, second = client(), client()
    first.connected()
    second.connected()
    assert emu.drop_connections(code=code, reason="bye") == 2
    assert first.expect_close() == (code, "bye")
    assert second.expect_close() == (code, "bye")
    wait_until(lambda: emu.connection_count() == 0)
    third = client()
    assert third.connected()["message_id"] == 0


def test_drop_connections_abort_sends_no_close_frame(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    raw.connected()
    emu.drop_connections(code=None)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            opcode, _ = raw.frame()
            assert opcode != websocket.ABNF.OPCODE_CLOSE


def test_reject_handshakes(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    emu.reject_handshakes(30, status=429)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        client()
    assert info.value.status_code == 429
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        client()
    assert emu.handshakes_rejected == 2
    emu.reject_handshakes(30, status=503)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        client()
    assert info.value.status_code == 503
    emu.reject_handshakes(0)
    assert client().connected()["message_id"] == 0
    assert emu.connections_accepted == 1 and emu.handshakes_rejected == 3


def test_send_raw_reaches_every_client(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    clients = [client() for _ in range(3)]
    for raw in clients:
        raw.connected()
    assert emu.send_raw("}{ not json") == 3
    for raw in clients:
        assert raw.recv_text() == "}{ not json"


def test_stall_stops_data_and_pongs_then_resumes(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(block_time=0.02)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.recv_type("subscribed")
    raw.recv_type("channel_data")
    emu.stall(1.0)
    stalled_at = time.monotonic()
    raw.ws.ping("are-you-there")
    # whatever was already in flight may still arrive; then the wire goes quiet
    last = 0
    got_pong = None
    while True:
        try:
            opcode, data = raw.frame(timeout=0.3)
        except websocket.WebSocketTimeoutException:
            break
        if opcode == websocket.ABNF.OPCODE_PONG:
            got_pong = time.monotonic() - stalled_at
            break
        last += 1
    assert got_pong is None
    assert time.monotonic() - stalled_at < 1.0
    assert emu.connection_count() == 1
    # after the stall: the pong arrives and data flows again
    while True:
        opcode, data = raw.frame(timeout=5)
        if opcode == websocket.ABNF.OPCODE_PONG:
            assert data == b"are-you-there"
            assert time.monotonic() - stalled_at >= 0.9
            break
    raw.recv_type("channel_data", timeout=5)


def test_stall_does_not_trip_the_heartbeat(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(heartbeat_interval=0.1, heartbeat_timeout=0.2)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    emu.stall(0.8)
    # reading keeps answering pings from the client side; the server must not time us out
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        with contextlib.suppress(websocket.WebSocketTimeoutException):
            raw.frame(timeout=0.1)
    assert emu.connection_count() == 1
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    assert raw.recv_type("subscribed")


def test_unstall_early(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    emu.stall(60)
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    assert raw.quiet(0.3)
    emu.unstall()
    assert raw.recv_type("subscribed")["message_id"] == 1
