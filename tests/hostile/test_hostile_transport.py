"""The transport against a hostile server (tests/helpers/fault_server.py), through the public API:
every wait is bounded (heartbeat, connect deadline, stop), everything held is bounded (events,
message and handshake sizes), RFC 6455 violations fail the link with an error event and a
reconnect, links that open and fail are reported, Retry-After is honoured, and the socket of
every attempt is shut down at once."""

from __future__ import annotations

import struct
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

from dydx_ws import DydxWebSocketClient, ErrorEvent, ReconnectPolicy
from tests.helpers.fault_server import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FaultServer,
    RawConn,
    connected_frame,
    encode_frame,
    serve_indexer,
)
from tests.helpers.waiting import wait_until

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=False)
Script = Callable[[RawConn], None]


def sdk_threads() -> List[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("dydx-ws"))


class Watched:
    """A client with its error and disconnect events recorded."""

    def __init__(self, server: FaultServer, **options: Any) -> None:
        options.setdefault("reconnect", FAST)
        self.client = DydxWebSocketClient(
            url=server.url, check_interval=None, cpu_affinity=None, **options
        )
        self.errors: List[ErrorEvent] = []
        self.disconnected = threading.Event()
        self.connections = 0
        self.client.on("error", self.errors.append)
        self.client.on("disconnected", lambda _e: self.disconnected.set())
        self.client.on("connected", lambda _e: self._opened())

    def _opened(self) -> None:
        self.connections += 1

    def connection_errors(self) -> List[ErrorEvent]:
        return [e for e in self.errors if e.kind == "connection"]

    def wait_error(self, text: str, timeout: float) -> ErrorEvent:
        def found() -> Any:
            return next((e for e in self.connection_errors() if text in e.message), None)

        event: ErrorEvent = wait_until(found, timeout)
        return event


@pytest.fixture
def watched() -> Iterator[List[Watched]]:
    made: List[Watched] = []
    yield made
    for w in made:
        assert w.client.stop(5)
    assert sdk_threads() == []


def start(made: List[Watched], server: FaultServer, **options: Any) -> Watched:
    w = Watched(server, **options)
    made.append(w)
    w.client.start()
    return w


def after_open(then: Script) -> Script:
    """Handshake and ``connected``, then ``then(conn)``."""

    def script(conn: RawConn) -> None:
        conn.handshake()
        conn.send_json(connected_frame())
        then(conn)

    return script


def hold(conn: RawConn) -> None:
    """Read (never answer) until the client leaves."""
    conn.wait_eof(60)


# --- 4. every wait of the I/O thread ends by the heartbeat deadline ------------------------
STALLS = {
    "inside a ping": b"\x89\x05ab",
    "after the first fragment": encode_frame(OP_TEXT, b'{"type":', fin=False),
    "inside a data frame": encode_frame(OP_TEXT, b"x" * 300)[:50],
}


@pytest.mark.parametrize("stall", list(STALLS.values()), ids=list(STALLS))
def test_a_stall_anywhere_is_detected_by_the_heartbeat(
    watched: List[Watched], stall: bytes
) -> None:
    def then(conn: RawConn) -> None:
        conn.send_raw(stall)
        hold(conn)

    with FaultServer(after_open(then)) as server:
        w = start(watched, server, ping_interval=0.5, pong_timeout=0.5, connect_timeout=10)
        server.wait_connections(1)
        began = time.monotonic()
        assert w.disconnected.wait(5), "the stall was not detected"
        assert time.monotonic() - began < 3.0  # ping_interval + pong_timeout = 1 s, + slack
        server.wait_connections(2)  # and it reconnects


def test_a_ping_trickled_byte_by_byte_is_detected(watched: List[Watched]) -> None:
    def then(conn: RawConn) -> None:
        conn.trickle(encode_frame(OP_PING, b"p" * 125), interval=0.3)  # ~38 s for the frame

    with FaultServer(after_open(then)) as server:
        w = start(watched, server, ping_interval=0.5, pong_timeout=0.5, connect_timeout=10)
        server.wait_connections(1)
        began = time.monotonic()
        assert w.disconnected.wait(5), "the trickled ping was never detected"
        assert time.monotonic() - began < 3.0
        assert "no pong" in (w.wait_error("after it opened", 5).message)


def stop_state(name: str, reached: threading.Event) -> Script:
    """A script that puts the client in state ``name`` and sets ``reached`` once it is there."""

    def stall(conn: RawConn, data: bytes) -> None:
        conn.send_raw(data)
        reached.set()
        hold(conn)

    if name == "mid-frame":
        return after_open(lambda c: stall(c, b"\x89\x05ab"))
    if name == "mid-fragment":
        return after_open(lambda c: stall(c, encode_frame(OP_TEXT, b"{", fin=False)))
    if name == "mid-handshake (trickled headers)":

        def trickled(conn: RawConn) -> None:
            conn.read_request()
            conn.send_raw(b"HTTP/1.1 101 Switching Protocols\r\n")
            reached.set()
            conn.trickle(b"X-Slow: " + b"a" * 500, interval=0.2)

        return trickled

    def unanswered(conn: RawConn) -> None:
        conn.read_request()
        reached.set()
        hold(conn)

    return unanswered


STOP_STATES = [
    "mid-frame",
    "mid-fragment",
    "mid-handshake (trickled headers)",
    "mid-handshake (no answer)",
]


@pytest.mark.parametrize("state", STOP_STATES)
def test_stop_is_bounded_in_every_state(state: str) -> None:
    reached = threading.Event()
    with FaultServer(stop_state(state, reached)) as server:
        client = DydxWebSocketClient(
            url=server.url, reconnect=FAST, check_interval=None, cpu_affinity=None
        )
        client.start()
        assert reached.wait(10)
        if state.startswith("mid-f"):
            assert client.wait_connected(5)
        began = time.monotonic()
        assert client.stop(2.0)
        assert time.monotonic() - began < 2.5
        assert sdk_threads() == []


# --- 5. connect_timeout is one deadline for TCP + TLS + the whole HTTP upgrade ------------
def test_trickled_handshake_headers_hit_the_connect_deadline(watched: List[Watched]) -> None:
    def script(conn: RawConn) -> None:
        conn.read_request()
        conn.send_raw(b"HTTP/1.1 101 Switching Protocols\r\n")
        conn.trickle(b"X-Slow: " + b"a" * 1000, interval=0.2)

    with FaultServer(script) as server:
        w = start(watched, server, connect_timeout=1.0)
        server.wait_connections(1)
        began = time.monotonic()
        event = w.wait_error("timeout", 4)
        assert time.monotonic() - began < 3.0
        assert "HTTP upgrade" in event.message
        server.wait_connections(2)


def test_a_refusal_with_a_huge_body_is_not_read(watched: List[Watched]) -> None:
    def script(conn: RawConn) -> None:
        conn.read_request()
        conn.send_raw(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 33554432\r\n\r\n")
        for _ in range(512):  # 32 MiB, as long as the client reads
            conn.send_raw(b"\0" * 65536)

    with FaultServer(script) as server:
        w = start(watched, server, connect_timeout=10)
        server.wait_connections(1)
        began = time.monotonic()
        event = w.wait_error("HTTP 503", 5)
        assert time.monotonic() - began < 2.0
        assert event.exception is not None and getattr(event.exception, "status_code", 0) == 503


# --- 7. maximum message and handshake sizes -------------------------------------------------
def test_a_declared_16_gib_frame_fails_at_once(watched: List[Watched]) -> None:
    def then(conn: RawConn) -> None:
        conn.send_raw(b"\x81\x7f" + struct.pack("!Q", 16 << 30))
        for _ in range(4096):  # keeps streaming payload for as long as the client takes it
            conn.send_raw(b"\0" * 65536)

    with FaultServer(after_open(then)) as server:
        w = start(watched, server)  # default max_message_size, 20 s heartbeat
        server.wait_connections(1)
        event = w.wait_error("max_message_size", 3)
        assert "17179869184 bytes" in event.message
        server.wait_connections(2)  # reconnected
        assert w.client.stats()["protocol_violations"] >= 1


def test_max_message_size_bounds_fragmented_messages_too(watched: List[Watched]) -> None:
    def then(conn: RawConn) -> None:
        conn.send_frame(OP_TEXT, b"[" + b"0," * 20000, fin=False)  # 40 KB each
        conn.send_frame(0, b"0," * 20000, fin=False)
        hold(conn)

    with FaultServer(after_open(then)) as server:
        w = start(watched, server, max_message_size=65536)
        first = server.wait_connections(1)[0]
        w.wait_error("fragmented message exceeds max_message_size", 5)
        wait_until(lambda: any(f.opcode == OP_CLOSE for f in first.received), 5)
        close = next(f for f in first.received if f.opcode == OP_CLOSE)
        assert close.close_code == 1009


def test_an_oversized_handshake_response_fails(watched: List[Watched]) -> None:
    def script(conn: RawConn) -> None:
        conn.handshake(extra_headers=["X-Big: " + "a" * 100_000])
        hold(conn)

    with FaultServer(script) as server:
        w = start(watched, server)
        w.wait_error("handshake response exceeds 65536 bytes", 5)
        server.wait_connections(2)
        assert w.connections == 0


# --- 8. RFC 6455 duties -----------------------------------------------------------------------
VIOLATIONS = {
    "masked": (encode_frame(OP_TEXT, b'{"type":"x"}', mask=True), "masked frame"),
    "long pong": (encode_frame(OP_PONG, b"x" * 200), "longer than 125 bytes"),
    "fragmented ping": (encode_frame(OP_PING, b"a", fin=False), "fragmented control frame"),
    "rsv1": (encode_frame(OP_TEXT, b"{}", rsv=4), "RSV bits"),
    "reserved opcode": (encode_frame(0x3, b"{}"), "reserved data opcode"),
    "bad close code": (encode_frame(OP_CLOSE, struct.pack("!H", 1005)), "invalid close code"),
}


@pytest.mark.parametrize("frame,reason", list(VIOLATIONS.values()), ids=list(VIOLATIONS))
def test_protocol_violations_fail_the_link(
    watched: List[Watched], frame: bytes, reason: str
) -> None:
    def then(conn: RawConn) -> None:
        conn.send_raw(frame)
        hold(conn)

    with FaultServer(after_open(then)) as server:
        w = start(watched, server)
        first = server.wait_connections(1)[0]
        event = w.wait_error(reason, 5)
        assert "after it opened" in event.message
        server.wait_connections(2)  # reconnected
        wait_until(lambda: any(f.opcode == OP_CLOSE for f in first.received), 5)
        close = next(f for f in first.received if f.opcode == OP_CLOSE)
        assert close.close_code == 1002


def test_an_extension_never_offered_fails_the_handshake(watched: List[Watched]) -> None:
    def script(conn: RawConn) -> None:
        conn.handshake(extra_headers=["Sec-WebSocket-Extensions: permessage-deflate"])
        conn.send_json(connected_frame())
        hold(conn)

    with FaultServer(script) as server:
        w = start(watched, server)
        w.wait_error("sec-websocket-extensions", 5)
        server.wait_connections(3)
        assert w.connections == 0  # never reported as connected


# --- 9. links that open and fail; Retry-After -------------------------------------------------
def test_a_link_that_opens_and_fails_repeatedly_is_reported(watched: List[Watched]) -> None:
    with FaultServer(after_open(lambda c: c.abort())) as server:
        w = start(watched, server)
        wait_until(lambda: len(w.connection_errors()) >= 3, 10)
        assert all("after it opened" in e.message for e in w.connection_errors())
        assert w.client.stats()["link_failures"] >= 3


def test_retry_after_is_honoured(watched: List[Watched]) -> None:
    accepted: List[float] = []

    def script(conn: RawConn) -> None:
        accepted.append(time.monotonic())
        if len(accepted) == 1:
            conn.http_response("503 Service Unavailable", ["Retry-After: 1"])
            return
        conn.handshake()
        serve_indexer(conn, lambda c, m: None)

    with FaultServer(script) as server:
        w = start(watched, server)  # its own first delay: 0.05 s
        assert w.client.wait_connected(10)
        assert len(accepted) == 2
        assert accepted[1] - accepted[0] >= 0.95
        assert "retry in 1.00 s" in w.wait_error("HTTP 503", 2).message


# --- 6. the event queue is bounded and events hold no whole frame ---------------------------
def test_events_are_bounded_and_hold_excerpts(watched: List[Watched]) -> None:
    sent = threading.Event()

    def then(conn: RawConn) -> None:
        conn.send_text(b"not json " + b"x" * 1_000_000)
        for _ in range(3000):
            conn.send_text(b"not json")
        sent.set()
        hold(conn)

    gate = threading.Event()
    with FaultServer(after_open(then)) as server:
        w = start(watched, server)
        first: List[ErrorEvent] = []
        dropped: List[ErrorEvent] = []
        w.client.on("error", lambda e: first or (first.append(e), gate.wait(10)))
        w.client.on("error", lambda e: e.kind == "events_dropped" and dropped.append(e))
        assert sent.wait(10)
        wait_until(lambda: w.client.stats()["frames"] >= 3001, 10)
        stats = w.client.stats()
        assert stats["events_pending"] <= 1000
        assert stats["events_dropped"] >= 1000
        gate.set()
        wait_until(lambda: dropped, 10)
        assert "events dropped" in dropped[0].message
        big = first[0]
        assert big.raw is not None and len(big.raw) <= 512
        assert len(getattr(big.exception, "raw", b"") or b"") <= 512


# --- issue 11 A: the attempt's socket is always shut down -----------------------------------
@pytest.mark.parametrize("code", [1012, 1008, 1011])
def test_the_socket_is_shut_down_after_a_server_close(watched: List[Watched], code: int) -> None:
    ends: List[float] = []

    def then(conn: RawConn) -> None:
        if len(conn.server.connections) > 1:
            return hold(conn)
        conn.send_close(code, '{"message":"Service restarting"}')
        sent = time.monotonic()
        ends.append(conn.wait_eof(10) - sent)

    with FaultServer(after_open(then)) as server:
        start(watched, server)
        wait_until(lambda: ends, 10)
        assert ends[0] < 1.0  # at once, not when the garbage collector frees it
        first = server.connections[0]
        assert [f.close_code for f in first.received if f.opcode == OP_CLOSE] == [code]
