"""Pure pieces of the transport: Retry-After parsing, the 101 checks, close frames, the frame
head checks of the general parser, the send path, and the event queue's bound."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Callable, Hashable, Iterator, List, Tuple

import pytest
import websocket

from dydx_ws.events import RAW_EXCERPT, Emitter, ErrorEvent, EventHub
from dydx_ws.transport._connection import _HandOff
from dydx_ws.transport._frame_reader import (
    FrameReader,
    ProtocolViolation,
    WriteOnlySocket,
    parse_close,
)
from dydx_ws.transport._opening import HandshakeError, check_upgrade, parse_retry_after


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now=now) == 60.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad) is None


def test_a_101_may_not_select_what_was_never_offered() -> None:
    check_upgrade({"upgrade": "websocket"})
    with pytest.raises(HandshakeError, match="sec-websocket-extensions"):
        check_upgrade({"sec-websocket-extensions": "permessage-deflate"})
    with pytest.raises(HandshakeError, match="sec-websocket-protocol"):
        check_upgrade({"sec-websocket-protocol": "chat"})


def test_close_frames() -> None:
    assert parse_close(b"") == (None, "")
    assert parse_close(struct.pack("!H", 1012) + b"restarting") == (1012, "restarting")
    assert parse_close(struct.pack("!H", 4000)) == (4000, "")
    for bad in (b"\x03", struct.pack("!H", 1005), struct.pack("!H", 999), struct.pack("!H", 5000)):
        with pytest.raises(ProtocolViolation):
            parse_close(bad)
    with pytest.raises(ProtocolViolation) as info:
        parse_close(struct.pack("!H", 1000) + b"\xff")
    assert info.value.code == 1007


@pytest.fixture
def reader() -> Iterator[Callable[[bytes], FrameReader]]:
    a, b = socket.socketpair()

    def load(data: bytes) -> FrameReader:
        sock = FrameReader(b, readable_now=lambda: True, max_message_size=65536)
        sock._buf, sock._pos = data, 0  # type: ignore[misc]
        return sock

    with a, b:
        yield load


def test_next_frame_parses_every_kind(reader: Callable[[bytes], FrameReader]) -> None:
    data = b"\x89\x02hi" + b"\x01\x01{" + b"\x80\x01}" + b"\x88\x02\x03\xe8"
    sock = reader(data)
    frames: List[Tuple[int, bool, bytes]] = []
    while (frame := sock.next_frame()) is not None:
        frames.append(frame)
    assert frames == [(9, True, b"hi"), (1, False, b"{"), (0, True, b"}"), (8, True, b"\x03\xe8")]
    assert sock.need == 2  # waiting for the next head


@pytest.mark.parametrize(
    "head,reason",
    [
        (b"\x81\x85", "masked"),
        (b"\xc1\x00", "RSV"),
        (b"\x8b\x00", "reserved control opcode"),
        (b"\x83\x00", "reserved data opcode"),
        (b"\x09\x00", "fragmented control"),
        (b"\x8a\x7e\x00\xc8", "longer than 125"),
        (b"\x81\x7f" + struct.pack("!Q", 1 << 34), "exceeds max_message_size"),
        (b"\x82\x7f" + struct.pack("!Q", 65537), "exceeds max_message_size"),
    ],
)
def test_next_frame_rejects_a_bad_head_before_its_payload(
    reader: Callable[[bytes], FrameReader], head: bytes, reason: str
) -> None:
    with pytest.raises(ProtocolViolation, match=reason):
        reader(head).next_frame()  # no payload has arrived: the head alone decides


def test_the_fast_path_leaves_oversized_frames_to_the_checks(
    reader: Callable[[bytes], FrameReader],
) -> None:
    sock = reader(b"\x81\x7f" + struct.pack("!Q", 1 << 34))
    assert sock.next_data_frame() is None and sock.need == 0  # not waited for
    with pytest.raises(ProtocolViolation) as info:
        sock.next_frame()
    assert info.value.code == 1009


def test_the_event_queue_is_bounded_and_reports_drops() -> None:
    hub = EventHub()
    seen: List[ErrorEvent] = []
    hub.add("error", seen.append)
    queued: List[Callable[[], None]] = []

    def call_soon(_key: Hashable, fn: Callable[[], None]) -> bool:
        queued.append(fn)
        return True

    emitter = Emitter(hub, call_soon, max_pending=10)
    for i in range(25):
        emitter.error("decode", f"bad {i}", raw="x" * 10_000)
    assert emitter.pending == 10 and emitter.dropped == 15
    while queued:
        queued.pop(0)()
    assert [e.message for e in seen[:10]] == [f"bad {i}" for i in range(10)]
    assert seen[-1].kind == "events_dropped" and "15 events dropped" in seen[-1].message
    assert all(len(e.raw) <= RAW_EXCERPT for e in seen if e.raw is not None)
    assert emitter.pending == 0


def test_emit_from_many_threads_keeps_the_count() -> None:
    hub = EventHub()
    hub.add("error", lambda e: None)
    lock = threading.Lock()
    queued: List[Callable[[], None]] = []

    def call_soon(_key: Hashable, fn: Callable[[], None]) -> bool:
        with lock:
            queued.append(fn)
        return True

    emitter = Emitter(hub, call_soon, max_pending=100)
    threads = [
        threading.Thread(target=lambda: [emitter.error("x", "y") for _ in range(100)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert emitter.pending == 100 and emitter.dropped == 300


def test_a_large_frame_is_written_whole_through_websocket_clients_send_path() -> None:
    """websocket-client (1.9) sends through its WrappedDispatcher, which reports every frame as
    fully sent whatever the socket took: a frame larger than the socket buffer must still
    arrive whole."""
    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.settimeout(10)  # as on the I/O thread: a timeout socket, whose send() may be partial
        app = websocket.WebSocketApp("ws://localhost/")  # as run_forever(dispatcher=) builds it:
        ws = websocket.WebSocket(dispatcher=app.create_dispatcher(None, _HandOff(), False))
        ws.sock = WriteOnlySocket(a)
        ws.connected = True
        text = "x" * 1_000_000
        received = bytearray()

        def drain() -> None:
            b.settimeout(10)
            while len(received) < 1_000_014:  # 14: header with a 64-bit length and a mask key
                chunk = b.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)

        reader = threading.Thread(target=drain, name="test-drain")
        reader.start()
        ws.send(text)
        reader.join(10)
        assert len(received) == 1_000_014
        assert received[:2] == b"\x81\xff" and struct.unpack("!Q", received[2:10])[0] == 1_000_000
        mask = received[10:14]
        assert bytes(c ^ mask[i % 4] for i, c in enumerate(received[14:1014])) == b"x" * 1000
        with pytest.raises(RuntimeError, match="may not read"):
            ws.recv()  # nothing but the frame reader reads the socket
