"""Our frame reader against websocket-client's own parser (``websocket._abnf``), on the same bytes.

Every stream is delivered in chunks cut at every byte offset (every pair of offsets for short
streams; around every frame boundary and header byte, plus a seeded sample, for long ones) to
``FrameReader.read`` with the fast path on and off, and to ``frame_buffer`` +
``continuous_frame``; the messages (data payloads, and every ping, pong and close in order) must
be the same. The general parser's frames ``(opcode, fin, payload)`` are compared with
``frame_buffer``'s one by one. Streams the reference rejects are rejected by ours too.
"""

from __future__ import annotations

import itertools
import random
import struct
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest
from websocket import WebSocketProtocolException
from websocket._abnf import ABNF, continuous_frame, frame_buffer

from dydx_ws.transport._frame_reader import FrameReader, ProtocolViolation

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]  # every length encoding and its boundaries
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
Event = Tuple[str, bytes]  # ("data", payload) or ("ping" | "pong" | "close", payload)
KINDS = {PING: "ping", PONG: "pong", CLOSE: "close"}


def frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A server frame (unmasked), in each of the three length encodings."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", first, n) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def payload(size: int, seed: int) -> bytes:
    """``size`` pseudo-random bytes (any byte value, 0x81 and 0x88 included)."""
    block = random.Random(seed).randbytes(min(size, 4096))
    return (block * (size // 4096 + 1))[:size]


class ChunkSocket:
    """A socket that returns the given chunks, one ``recv`` at a time, at most ``bufsize`` bytes
    per call (the rest of a chunk stays for the next)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = [c for c in chunks if c]
        self._offset = 0

    def recv(self, bufsize: int) -> bytes:
        if not self._chunks:
            raise AssertionError("read past the end of the stream")
        chunk = self._chunks[0]
        part = chunk[self._offset : self._offset + bufsize]
        self._offset += len(part)
        if self._offset >= len(chunk):
            self._chunks.pop(0)
            self._offset = 0
        return part

    def readable(self) -> bool:
        return bool(self._chunks)

    def remaining(self) -> int:
        return sum(map(len, self._chunks)) - self._offset


# -- the three ways to read a stream ------------------------------------------------------------
def ours(chunks: Sequence[bytes], fast: bool, limit: int = 64) -> List[Event]:
    """Messages as the connection's serve loop reads them: ``read`` whenever bytes are ready."""
    sock = ChunkSocket(chunks)
    reader = FrameReader(sock, sock.readable, 1 << 20, fast_frames=fast)
    events: List[Event] = []

    def on_control(opcode: int, data: bytes) -> bool:
        events.append((KINDS[opcode], data))
        return opcode == CLOSE

    while sock.readable() or reader.buffered():
        if reader.read(lambda data: events.append(("data", data)), on_control, limit):
            break
    return events


def ours_frames(chunks: Sequence[bytes]) -> List[Tuple[int, bool, bytes]]:
    """The general parser's frames up to a close, filling the buffer when a frame is cut."""
    sock = ChunkSocket(chunks)
    reader = FrameReader(sock, sock.readable, 1 << 20, fast_frames=False)
    frames = []
    while True:
        got = reader.next_frame()
        if got is not None:
            frames.append(got)
            if got[0] == CLOSE:
                return frames
        elif not reader.fill():
            return frames


def reference(chunks: Sequence[bytes]) -> Tuple[List[Event], List[Tuple[int, bool, bytes]]]:
    """websocket-client's parser (what ``WebSocket.recv_data_frame`` runs): its messages and
    its frames."""
    sock = ChunkSocket(chunks)
    parser = frame_buffer(sock.recv, skip_utf8_validation=True)
    joiner = continuous_frame(fire_cont_frame=False, skip_utf8_validation=True)
    events: List[Event] = []
    frames: List[Tuple[int, bool, bytes]] = []
    while sock.remaining() or any(parser.recv_buffer):  # bytes it has not parsed yet
        f: ABNF = parser.recv_frame()
        frames.append((f.opcode, bool(f.fin), f.data))
        if f.opcode in KINDS:
            events.append((KINDS[f.opcode], f.data))
            if f.opcode == CLOSE:
                break
            continue
        joiner.validate(f)
        joiner.add(f)
        if joiner.is_fire(f):
            events.append(("data", joiner.extract(f)[1].data))
    return events, frames


# -- cutting streams ----------------------------------------------------------------------------
def cut(stream: bytes, at: Iterable[int]) -> List[bytes]:
    points = [0, *sorted(set(p for p in at if 0 < p < len(stream))), len(stream)]
    return [stream[a:b] for a, b in zip(points, points[1:])]


def cuttings(stream: bytes, bounds: Sequence[int]) -> Iterator[List[bytes]]:
    """The stream whole, byte by byte when short, cut once at every offset (and at every pair of
    offsets when short); long streams at every offset near a frame boundary and a sample."""
    n = len(stream)
    yield [stream]
    if n <= 300:
        yield [stream[i : i + 1] for i in range(n)]
        offsets: Iterable[int] = range(1, n)
    else:
        near = {b + d for b in bounds for d in range(-3, 15)}
        offsets = sorted(near | set(random.Random(n).sample(range(1, n), 60)))
    for i in offsets:
        yield cut(stream, [i])
    if n <= 60:
        for i, j in itertools.combinations(range(1, n), 2):
            yield cut(stream, [i, j])


def boundaries(frames: Sequence[bytes]) -> List[int]:
    return [0, *itertools.accumulate(len(f) for f in frames)][:-1]  # where each frame starts


def check(frames: Sequence[bytes]) -> int:
    """Compare all readers on every cutting of ``frames`` joined; returns the cuttings tried."""
    stream = b"".join(frames)
    expected_events, expected_frames = reference([stream])
    assert expected_events, "a stream with no message compares nothing"
    tried = 0
    for chunks in cuttings(stream, boundaries(frames)):
        events, frames_seen = reference(chunks)
        assert (events, frames_seen) == (expected_events, expected_frames)
        assert ours_frames(chunks) == expected_frames, [len(c) for c in chunks]
        for fast in (True, False):
            assert ours(chunks, fast) == expected_events, (fast, [len(c) for c in chunks])
        tried += 1
    assert ours([stream], True, limit=1) == expected_events  # one frame per read() call
    return tried


# -- streams --------------------------------------------------------------------------------------
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("size", SIZES)
def test_every_length_encoding(opcode: int, size: int) -> None:
    data = payload(size, size)
    assert check([frame(opcode, data), frame(TEXT, b'{"next":1}')]) > 2


@pytest.mark.parametrize("sizes", [(0, 0, 0), (1, 125, 126), (65535, 1, 65536), (70000, 0, 3)])
def test_fragments_with_control_frames_between_them(sizes: Tuple[int, int, int]) -> None:
    a, b, c = (payload(n, i) for i, n in enumerate(sizes))
    frames = [
        frame(TEXT, b"before"),
        frame(TEXT, a, fin=False),
        frame(PING, b"are you there"),
        frame(CONT, b, fin=False),
        frame(PONG, b""),
        frame(PING, b"x" * 125),
        frame(CONT, c, fin=True),
        frame(BINARY, b"after"),
    ]
    assert check(frames) > len(frames)


def test_a_short_mixed_stream_at_every_pair_of_cuts() -> None:
    frames = [
        frame(TEXT, b"a"),
        frame(BINARY, b"", fin=False),
        frame(PING, b""),
        frame(CONT, b"bc"),
        frame(PONG, b"p"),
        frame(TEXT, b""),
        frame(CLOSE, struct.pack("!H", 1000) + b"bye"),
    ]
    n = sum(map(len, frames))
    assert n <= 60
    assert check(frames) == 2 + (n - 1) + (n - 1) * (n - 2) // 2  # every pair of cuts too


def test_a_close_frame_ends_the_stream_for_both() -> None:
    frames = [frame(TEXT, b"last"), frame(CLOSE, struct.pack("!H", 4000)), frame(TEXT, b"never")]
    assert ours([b"".join(frames)], True) == [("data", b"last"), ("close", b"\x0f\xa0")]
    check(frames)


@pytest.mark.parametrize(
    "frames",
    [
        [frame(TEXT, b"x", rsv=4)],  # RSV1 (compression) never negotiated
        [frame(TEXT, b"x", rsv=1)],
        [frame(0x3, b"x")],  # reserved data opcode
        [frame(0xB, b"")],  # reserved control opcode
        [frame(TEXT, b"a", fin=False), frame(PING, b"", fin=False)],  # fragmented ping
        [frame(CONT, b"x")],  # a continuation with nothing to continue
        [frame(TEXT, b"a", fin=False), frame(BINARY, b"b")],  # a new message inside one
        [frame(CLOSE, b"\x03")],  # a 1-byte close payload
        [frame(CLOSE, struct.pack("!H", 1005))],  # a code no close frame carries
    ],
)
def test_what_websocket_client_rejects_is_rejected(frames: List[bytes]) -> None:
    stream = b"".join(frames)
    with pytest.raises(WebSocketProtocolException):
        reference([stream])
    for fast in (True, False):
        with pytest.raises(ProtocolViolation):
            ours_or_close_checked([stream], fast)


def ours_or_close_checked(chunks: Sequence[bytes], fast: bool) -> Optional[List[Event]]:
    """Read as the connection does, which also parses a close frame's code and reason."""
    from dydx_ws.transport._frame_reader import parse_close

    events = ours(chunks, fast)
    for kind, data in events:
        if kind == "close":
            parse_close(data)
    return events


@pytest.mark.parametrize(
    "frames",
    [
        [struct.pack("!BB", 0x81, 0x80 | 1) + b"\0\0\0\0" + b"x"],  # masked (key 0)
        [frame(PING, b"x" * 126)],  # control frames carry at most 125 bytes
        [frame(TEXT, b"a", fin=False), frame(PONG, b"", fin=False)],  # fragmented pong
    ],
)
def test_ours_is_stricter_where_rfc_6455_says_so(frames: List[bytes]) -> None:
    stream = b"".join(frames)
    reference([stream])  # websocket-client lets these through
    for fast in (True, False):
        with pytest.raises(ProtocolViolation):
            ours([stream], fast)


@pytest.mark.parametrize("fast", [True, False])
def test_the_off_switch_sends_every_frame_through_the_general_parser(fast: bool) -> None:
    calls = {"fast": 0, "general": 0}

    class Counted(FrameReader):
        __slots__ = ()

        def next_data_frame(self) -> Optional[bytes]:
            calls["fast"] += 1
            return super().next_data_frame()

        def next_frame(self) -> Optional[Tuple[int, bool, bytes]]:
            calls["general"] += 1
            return super().next_frame()

    stream = b"".join(frame(TEXT, b"%d" % i) for i in range(10))
    sock = ChunkSocket([stream])
    got: List[bytes] = []
    Counted(sock, sock.readable, 1 << 20, fast_frames=fast).read(got.append, lambda *_: False, 64)
    assert got == [b"%d" % i for i in range(10)]
    if fast:
        assert calls["fast"] >= 10 and calls["general"] == 0
    else:
        assert calls["fast"] == 0 and calls["general"] == 11  # the first finds the buffer empty
