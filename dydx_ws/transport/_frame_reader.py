"""Incoming WebSocket frames parsed from our own read buffer (RFC 6455), beside websocket-client.

websocket-client performs the HTTP upgrade and writes every outgoing frame; reading is ours:
:class:`FrameReader` reads the socket in large chunks and slices frames out of the buffer, on a
fast path for complete unfragmented unmasked text/binary frames (``fast_frames``; the common
case in a few operations) and on a general, checking parser for everything else (control
frames, fragments, limits). Nothing here waits: the caller's ``select`` bounds every stall.

What the transport relies on in websocket-client (verified for the versions ``setup.cfg``
allows; ``tests/unit/test_frame_reader_differential.py`` compares this parser with
``websocket._abnf``, and the emulator tests run the whole path):

- ``WebSocketApp(socket=...)`` performs the upgrade on our pre-connected socket (a
  ``HandshakeSocket``, ``_opening.py``) and reads the response one byte at a time up to the
  blank line (``recv_line``), so frames sent right after the 101 are still in the socket
  when this reader starts.
- ``run_forever(dispatcher=obj)`` wraps ``obj`` in its ``WrappedDispatcher``, calls
  ``obj.signal`` once, hands ``obj.read(sock, read_callback)`` its frame reader after the
  handshake and returns without tearing the socket down (``reconnect=0``, ``ping_interval=0``:
  no thread, no timer of its own). On a failed handshake it reports through ``on_error``.
- ``app.sock`` is then the open ``websocket.WebSocket``; ``ws.handshake_response.headers`` holds
  the 101's headers (lower-case names).
- The socket swap: we replace ``ws.sock`` (its socket attribute) by :class:`WriteOnlySocket`.
  websocket-client then only writes through it: ``ws.send`` / ``ws.ping`` / ``ws.pong`` /
  ``ws.send_close`` build the frame with ``ABNF.create_frame(...).format()`` (masking with a
  fresh key) and write it under ``ws.lock`` through ``websocket._socket.send(sock, data)``
  (``sock.gettimeout()``, then ``sock.send(data)``); since 1.9 by way of
  ``WrappedDispatcher.send`` -> ``obj.buffwrite(sock, data, send, ...)``, which reports the
  whole frame written whatever was sent, so ``WriteOnlySocket.send`` writes all of it or
  raises. ``ws.send_close`` also clears ``ws.connected``. We never call ``ws.recv*`` or
  ``ws.close`` (they would read frames through websocket-client's own ``frame_buffer``): a
  read through ``ws.sock`` raises.
- Exceptions: ``WebSocketException`` and its ``WebSocketProtocolException``,
  ``WebSocketTimeoutException`` and ``WebSocketConnectionClosedException`` subclasses;
  ``websocket.STATUS_NORMAL``.
"""

from __future__ import annotations

import ssl
from typing import Any, Callable, List, Optional, Tuple

import websocket

from ..errors import DydxConnectionError

__all__ = [
    "MIN_MAX_MESSAGE_SIZE",
    "FrameReader",
    "ProtocolViolation",
    "WriteOnlySocket",
    "parse_close",
]

#: The smallest ``max_message_size``: the fast path checks sizes only for 64-bit lengths
#: (frames of 64 KiB and more); shorter frames are always within the limit.
MIN_MAX_MESSAGE_SIZE = 65536
_READ_SIZE = 65536  # bytes asked of the socket per read
_VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))


class ProtocolViolation(DydxConnectionError, websocket.WebSocketProtocolException):
    """The server broke RFC 6455 (or a configured limit): the link is failed with ``code``."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


class FrameReader:
    """The connected socket, read in large chunks and parsed into frames and messages.

    One 64 KiB ``recv`` serves many frames (each system call releases and re-acquires the GIL,
    which with worker threads running dominated the receive path when websocket-client asked
    for header, length and payload separately). A frame cut by the end of a read is completed
    by ``fill`` (``need`` says how many bytes are missing). :meth:`read` is the loop the
    connection runs; ``next_data_frame`` is the fast path, ``next_frame`` the general parser.
    With ``fast_frames=False`` every frame goes through ``next_frame``.
    """

    __slots__ = (
        "_buf",
        "_eof",
        "_fast",
        "_max",
        "_parts",
        "_parts_size",
        "_pending",
        "_pos",
        "_readable_now",
        "_sock",
        "need",
    )

    def __init__(
        self,
        sock: Any,
        readable_now: Callable[[], bool],
        max_message_size: int,
        *,
        fast_frames: bool = True,
    ) -> None:
        if max_message_size < MIN_MAX_MESSAGE_SIZE:
            raise ValueError(f"max_message_size must be >= {MIN_MAX_MESSAGE_SIZE}")
        self._sock = sock
        self._max = max_message_size
        self._fast = fast_frames
        self._readable_now = readable_now  # does the socket have bytes, without waiting?
        self._pending: Optional[Callable[[], int]] = getattr(sock, "pending", None)  # TLS
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._parts: Optional[List[bytes]] = None  # a fragmented message being received
        self._parts_size = 0
        #: Bytes still missing from the frame at the head of the buffer (0: none).
        self.need = 0

    def read(
        self,
        on_message: Callable[[bytes], object],
        on_control: Callable[[int, bytes], bool],
        limit: int,
    ) -> bool:
        """Deliver up to ``limit`` frames: each complete message (text or binary, reassembled
        from fragments) to ``on_message``, each ping, pong or close to ``on_control(opcode,
        payload)``. Reads the socket only when a frame is cut and bytes are ready. Returns True
        once ``on_control`` returns True (the link ends), otherwise False when the buffer is
        drained, the rest of a frame has not arrived, or ``limit`` frames were read. Raises
        :class:`ProtocolViolation`, or ``WebSocketConnectionClosedException`` at the end of the
        stream."""
        fast = self._fast and self._parts is None  # never inside a fragmented message
        next_data_frame = self.next_data_frame
        for _ in range(limit):
            payload = next_data_frame() if fast else None
            if payload is not None:
                on_message(payload)
            elif fast and self.need:
                if not self.fill():
                    return False  # the rest of the frame has not arrived: select
                continue
            else:
                frame = self.next_frame()
                if frame is None:
                    if not self.need:
                        raise websocket.WebSocketConnectionClosedException(
                            "the server closed the TCP connection"
                        )
                    if not self.fill():
                        return False
                    continue
                opcode, fin, data = frame
                if opcode >= 0x8:
                    if on_control(opcode, data):
                        return True
                else:
                    message = self._assemble(opcode, fin, data)
                    if message is not None:
                        on_message(message)
                    fast = self._fast and self._parts is None
            if not self.buffered():
                return False
        return False

    def next_data_frame(self) -> Optional[bytes]:
        """The payload of the next frame if it is a complete, final, unmasked text or binary
        frame already in the buffer (the common case, parsed here in a few operations);
        otherwise None and nothing is consumed. ``need`` then says how many more bytes such a
        frame still needs (see ``fill``), or is 0 when next_frame() must parse what comes
        next (control frames, fragments, frames over ``max_message_size``, anything else).
        Not to be called inside a fragmented message (a data frame there is a violation)."""
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail < 2:
            self.need = 0 if self._eof else 2 - avail
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        if (b0 != 0x81 and b0 != 0x82) or b1 > 127:  # not FIN + text/binary, or masked
            self.need = 0
            return None
        n = b1
        head = 2
        if n == 126:
            if avail < 4:
                self.need = 0 if self._eof else 4 - avail
                return None
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            head = 4
        elif n == 127:
            if avail < 10:
                self.need = 0 if self._eof else 10 - avail
                return None
            n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            if n > self._max:  # next_frame() fails the link before anything is buffered
                self.need = 0
                return None
            head = 10
        end = pos + head + n
        if end > len(buf):
            self.need = 0 if self._eof else end - len(buf)
            return None
        self._pos = end
        return buf[pos + head : end]

    def next_frame(self) -> Optional[Tuple[int, bool, bytes]]:
        """The next frame of any kind as ``(opcode, fin, payload)``, or None while it is
        incomplete (``need`` says how many bytes are missing; 0 at end of stream). The frame
        head is checked before its payload is waited for: a masked frame, RSV bits (no
        extension is ever negotiated), a reserved opcode, a fragmented or >125-byte control
        frame, or a length over ``max_message_size`` raise :class:`ProtocolViolation`."""
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        self.need = 0
        if avail < 2:
            self.need = 0 if self._eof else 2 - avail
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        opcode, fin, n = b0 & 0x0F, bool(b0 & 0x80), b1 & 0x7F
        if b1 & 0x80:
            raise ProtocolViolation("the server sent a masked frame")
        if b0 & 0x70:
            raise ProtocolViolation(f"RSV bits {(b0 >> 4) & 7:#05b} set, no extension agreed")
        if opcode >= 0x8:
            if opcode > 0xA:
                raise ProtocolViolation(f"reserved control opcode {opcode:#x}")
            if not fin:
                raise ProtocolViolation("fragmented control frame")
            if n > 125:
                raise ProtocolViolation("control frame longer than 125 bytes")
        elif opcode > 0x2:
            raise ProtocolViolation(f"reserved data opcode {opcode:#x}")
        head = 2
        if n == 126:
            head = 4
        elif n == 127:
            head = 10
        if avail < head:
            self.need = 0 if self._eof else head - avail
            return None
        if n == 126:
            n = (buf[pos + 2] << 8) | buf[pos + 3]
        elif n == 127:
            n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        if n > self._max:
            raise ProtocolViolation(
                f"a frame of {n} bytes exceeds max_message_size ({self._max})", code=1009
            )
        end = pos + head + n
        if end > len(buf):
            self.need = 0 if self._eof else end - len(buf)
            return None
        self._pos = end
        return opcode, fin, buf[pos + head : end]

    def _assemble(self, opcode: int, fin: bool, data: bytes) -> Optional[bytes]:
        """A data frame into the message being received: the complete message, or None while
        fragments are missing. Continuations and new messages are checked (RFC 6455 5.4), and
        the total against ``max_message_size``."""
        parts = self._parts
        if opcode == 0x0:
            if parts is None:
                raise ProtocolViolation("a continuation frame outside a fragmented message")
            self._parts_size += len(data)
            if self._parts_size > self._max:
                raise ProtocolViolation(
                    f"a fragmented message exceeds max_message_size ({self._max})", code=1009
                )
            parts.append(data)
            if not fin:
                return None
            self._parts = None
            return b"".join(parts)
        if parts is not None:
            raise ProtocolViolation("a new data frame inside a fragmented message")
        if fin:
            return data
        self._parts, self._parts_size = [data], len(data)
        return None

    def fill(self) -> bool:
        """Append what the socket has ready (without waiting) to the unread bytes; False if
        nothing was ready. At end of stream ``need`` stays 0, so ``next_frame`` reports the end
        (None with ``need`` 0)."""
        if not self._tls_pending() and not self._readable_now():
            return False
        try:
            chunk = self._sock.recv(max(self.need, _READ_SIZE))
        except ssl.SSLWantReadError:  # part of a TLS record: the rest is on its way
            return False
        if not chunk:
            self._eof = True
            self.need = 0
            return True
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        self.need = 0  # the head frame is parsed again by the next next_data_frame()
        return True

    def buffered(self) -> bool:
        """A frame can be read without touching the socket (or the TLS layer holds bytes)."""
        return (self._pos < len(self._buf) and not self.need) or self._tls_pending()

    def _tls_pending(self) -> bool:
        """Decrypted bytes wait in the TLS layer (invisible to ``select``)."""
        pending = self._pending
        return pending is not None and pending() > 0


class WriteOnlySocket:
    """What websocket-client sees as ``ws.sock`` once the link is open: it writes frames through
    it, whole (``sendall``, bounded by the socket's timeout), and can never read (the bytes are
    :class:`FrameReader`'s)."""

    __slots__ = ("_sock",)

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def send(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def gettimeout(self) -> Optional[float]:
        return self._sock.gettimeout()  # type: ignore[no-any-return]

    def settimeout(self, timeout: Optional[float]) -> None:
        self._sock.settimeout(timeout)

    def fileno(self) -> int:
        return self._sock.fileno()  # type: ignore[no-any-return]

    def recv(self, _bufsize: int) -> bytes:
        raise RuntimeError("websocket-client may not read this socket: FrameReader parses frames")


def parse_close(data: bytes) -> Tuple[Optional[int], str]:
    """Code and reason of a close frame (RFC 6455 5.5.1, 7.4); ProtocolViolation if invalid."""
    if not data:
        return None, ""
    if len(data) == 1:
        raise ProtocolViolation("a close frame with a 1-byte payload")
    code = (data[0] << 8) | data[1]
    if code not in _VALID_CLOSE_CODES:
        raise ProtocolViolation(f"invalid close code {code}")
    try:
        return code, data[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolViolation("a close reason that is not UTF-8", code=1007) from None
