"""The receive fast path: complete, final, unmasked text/binary frames are sliced out of the
buffer; everything else is left, untouched, for the general parser (next_frame)."""

from __future__ import annotations

import socket
import struct
from typing import Iterator, Tuple

import pytest

from dydx_ws.transport._frame_reader import FrameReader


def frame(payload: bytes, first: int = 0x81, mask: bool = False) -> bytes:
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, m | 126, n)
    else:
        head = struct.pack("!BBQ", first, m | 127, n)
    return head + (b"\0\0\0\0" if mask else b"") + payload


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, FrameReader]]:
    a, b = socket.socketpair()
    with a, b:
        yield a, FrameReader(b, lambda: True, 1 << 26)  # tests send before reading


def pull(writer: socket.socket, reader: FrameReader, data: bytes) -> None:
    """Send ``data`` and pull it into the reader's buffer."""
    writer.sendall(data)
    assert reader.fill() and reader.buffered()


def unread(reader: FrameReader) -> bytes:
    return reader._buf[reader._pos :]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_every_length_encoding(pair: Tuple[socket.socket, FrameReader], size: int) -> None:
    writer, reader = pair
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    data = frame(payload) + frame(b'{"next":1}')
    writer.sendall(data)
    received = b""
    while len(received) < len(data):  # large frames arrive in several chunks
        reader._sock.settimeout(2)
        chunk = reader._sock.recv(1 << 20)
        received += chunk
    reader._buf, reader._pos = received, 0
    assert reader.next_data_frame() == payload
    assert reader.next_data_frame() == b'{"next":1}'
    assert not reader.buffered()


def test_binary_frames_are_taken_too(pair: Tuple[socket.socket, FrameReader]) -> None:
    writer, reader = pair
    pull(writer, reader, frame(b"\x01\x02", first=0x82))
    assert reader.next_data_frame() == b"\x01\x02"


@pytest.mark.parametrize(
    "data",
    [
        frame(b"", first=0x89),  # ping: the connection answers it
        frame(b"", first=0x8A),  # pong
        frame(b"\x03\xe8", first=0x88),  # close
        frame(b"part", first=0x01),  # first fragment (no FIN)
        frame(b"rest", first=0x80),  # continuation
        frame(b"zip", first=0xC1),  # RSV1 (compressed): not negotiated, not ours to accept
        frame(b"masked", mask=True),  # a server never masks
        frame(b"x" * 300)[:100],  # incomplete: the rest has not arrived yet
        frame(b"x" * 70000)[:6],  # incomplete extended length
        b"\x81",  # a lone first byte
    ],
)
def test_anything_else_is_left_untouched(
    pair: Tuple[socket.socket, FrameReader], data: bytes
) -> None:
    writer, reader = pair
    pull(writer, reader, data)
    assert reader.next_data_frame() is None
    assert unread(reader) == data  # nothing consumed: the general parser sees it all


def test_a_control_frame_between_data_frames(pair: Tuple[socket.socket, FrameReader]) -> None:
    writer, reader = pair
    pull(writer, reader, frame(b"a") + frame(b"", first=0x89) + frame(b"b"))
    assert reader.next_data_frame() == b"a"
    assert reader.next_data_frame() is None
    assert reader.next_frame() == (0x9, True, b"")  # the general parser reads the ping...
    assert reader.next_data_frame() == b"b"  # ...and the fast path resumes after it


def test_a_frame_cut_by_the_end_of_a_read_is_completed_by_fill(
    pair: Tuple[socket.socket, FrameReader],
) -> None:
    writer, reader = pair
    payload = b"y" * 1500
    data = frame(b"a") + frame(payload) + frame(b"b")
    cut = len(frame(b"a")) + 700
    pull(writer, reader, data[:cut])
    assert reader.next_data_frame() == b"a"
    assert reader.next_data_frame() is None
    assert reader.need == len(frame(payload)) - 700  # the bytes still to come
    assert not reader.buffered()  # so the serve loop waits in select, not in a busy loop
    writer.sendall(data[cut:])
    assert reader.fill()
    assert reader.need == 0 and reader.buffered()
    assert reader.next_data_frame() == payload
    assert reader.next_data_frame() == b"b"


@pytest.mark.parametrize("cut", [0, 1, 3, 9])  # inside the header, at every length encoding
def test_fill_completes_a_cut_header(pair: Tuple[socket.socket, FrameReader], cut: int) -> None:
    writer, reader = pair
    payload = b"z" * 70000
    data = frame(payload)
    writer.sendall(data[:cut])
    if cut:
        reader._buf, reader._pos = reader._sock.recv(cut), 0
    assert reader.next_data_frame() is None and reader.need > 0
    writer.sendall(data[cut:])
    reader._sock.settimeout(2)
    got = reader.next_data_frame()
    while got is None:  # a large frame arrives in several chunks
        assert reader.need > 0
        assert reader.fill()
        got = reader.next_data_frame()
    assert got == payload


def test_fill_without_ready_bytes_returns_false(
    pair: Tuple[socket.socket, FrameReader],
) -> None:
    _, b = pair
    reader = FrameReader(b._sock, lambda: False, 1 << 26)
    assert reader.next_data_frame() is None and reader.need == 2
    assert not reader.fill()  # nothing ready: the caller goes back to select


def test_end_of_stream_inside_a_frame_goes_to_the_general_parser(
    pair: Tuple[socket.socket, FrameReader],
) -> None:
    writer, reader = pair
    pull(writer, reader, frame(b"x" * 300)[:100])
    writer.shutdown(socket.SHUT_WR)
    assert reader.next_data_frame() is None and reader.need > 0
    assert reader.fill()  # end of stream noted
    assert reader.next_data_frame() is None and reader.need == 0  # the general parser's turn:
    assert unread(reader) == frame(b"x" * 300)[:100]  # what is left is untouched...
    assert reader.next_frame() is None and reader.need == 0  # ...and it sees the end
