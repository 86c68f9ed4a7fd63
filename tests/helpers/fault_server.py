"""A fault-injecting raw WebSocket server of our own, on loopback, for hostile-server tests.

Stdlib sockets only, deliberately not the emulator (which is well behaved by design): each accepted
connection runs a *script* on its own thread, and the script decides everything the server does,
byte by byte if needed: the HTTP upgrade (or a broken one), frames with any opcode, RSV bits,
masking, fragmentation and length encoding, stalls, trickles, resets. ``RawConn`` offers the
pieces; ``serve_indexer`` is a minimal Indexer loop (``connected`` frame, pings answered, each
subscribe handed to a responder) that scripts build on.

    def script(conn: RawConn) -> None:
        conn.handshake()
        serve_indexer(conn, lambda c, msg: c.send_json(subscribed(msg, contents={...})))

    with FaultServer(script) as server:
        client = DydxWebSocketClient(url=server.url, ...)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ConnectionGone(Exception):
    """The peer closed or reset the TCP connection (or the server is stopping)."""


@dataclass
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")

    @property
    def close_code(self) -> Optional[int]:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = False,
    declared_length: Optional[int] = None,
) -> bytes:
    """One frame's bytes; ``declared_length`` lies about the payload length (oversize tests)."""
    length = len(payload) if declared_length is None else declared_length
    head = bytes([(0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)])
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def accept_key(request: bytes) -> str:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            digest = hashlib.sha1(value.strip() + _GUID).digest()
            return base64.b64encode(digest).decode()
    raise ValueError("request has no Sec-WebSocket-Key")


class RawConn:
    """One accepted TCP connection, driven by a script."""

    def __init__(self, sock: socket.socket, server: FaultServer) -> None:
        self.sock = sock
        self.server = server
        self.request = b""
        self.received: List[Frame] = []  # every frame read from the client, in order
        self._buf = b""

    # --- HTTP upgrade -----------------------------------------------------------------------
    def read_request(self, timeout: float = 10.0) -> bytes:
        while b"\r\n\r\n" not in self._buf:
            self._fill(timeout)
        self.request, _, self._buf = self._buf.partition(b"\r\n\r\n")
        return self.request

    def handshake(self, extra_headers: Iterable[str] = (), timeout: float = 10.0) -> None:
        """Read the upgrade request and answer a correct ``101 Switching Protocols``."""
        if not self.request:
            self.read_request(timeout)
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(self.request)}",
            *extra_headers,
        ]
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())

    def http_response(self, status: str, headers: Iterable[str] = (), body: bytes = b"") -> None:
        """Answer the upgrade with a plain HTTP response (refused handshakes)."""
        if not self.request:
            self.read_request()
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
        self.send_raw(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    # --- sending ------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ConnectionGone(str(exc)) from exc

    def trickle(self, data: bytes, interval: float, chunk: int = 1) -> None:
        """Send ``data`` ``chunk`` bytes at a time, ``interval`` seconds apart (stall tests)."""
        for i in range(0, len(data), chunk):
            self.send_raw(data[i : i + chunk])
            if self.server.stopping.wait(interval):
                raise ConnectionGone("server stopping")

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: Any) -> None:
        self.send_raw(encode_frame(opcode, payload, **kwargs))

    def send_text(self, text: Union[str, bytes], **kwargs: Any) -> None:
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, **kwargs)

    def send_json(self, obj: Any) -> None:
        self.send_text(json.dumps(obj, separators=(",", ":")))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())

    def abort(self) -> None:
        """Reset the TCP connection (RST, no close frame)."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # --- receiving ----------------------------------------------------------------------------
    def _fill(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.server.stopping.is_set():
                raise ConnectionGone("server stopping")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no data from the client in time")
            self.sock.settimeout(min(remaining, 0.1))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                raise ConnectionGone(str(exc)) from exc
            if not data:
                raise ConnectionGone("client closed TCP")
            self._buf += data
            return

    def _take(self, n: int, timeout: float) -> bytes:
        while len(self._buf) < n:
            self._fill(timeout)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def recv_frame(self, timeout: float = 10.0) -> Frame:
        """The next frame from the client, unmasked (clients must mask)."""
        b0, b1 = self._take(2, timeout)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2, timeout))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8, timeout))[0]
        key = self._take(4, timeout) if b1 & 0x80 else b""
        payload = self._take(length, timeout)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        frame = Frame(b0 & 0xF, payload, bool(b0 & 0x80))
        self.received.append(frame)
        return frame

    def wait_eof(self, timeout: float = 10.0) -> float:
        """Read (and record) frames until the client ends TCP; the ``time.monotonic()`` of the
        end. Raises TimeoutError if the socket is still open after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv_frame(max(deadline - time.monotonic(), 0.001))
            except ConnectionGone:
                return time.monotonic()

    def recv_json(self, timeout: float = 10.0) -> Dict[str, Any]:
        """The next text frame as JSON, answering pings on the way."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            if frame.opcode == OP_PING:
                self.send_frame(OP_PONG, frame.payload)
            elif frame.opcode == OP_CLOSE:
                raise ConnectionGone(f"client sent close {frame.close_code}")
            elif frame.opcode == OP_TEXT:
                return dict(json.loads(frame.payload))


# --- a minimal Indexer ------------------------------------------------------------------------
Responder = Callable[[RawConn, Dict[str, Any]], None]


def connected_frame(connection_id: str = "fault-conn") -> Dict[str, Any]:
    return {"type": "connected", "connection_id": connection_id, "message_id": 0}


def subscribed(request: Dict[str, Any], contents: Any, message_id: int = 1) -> Dict[str, Any]:
    """The ``subscribed`` frame answering ``request`` (a client subscribe message)."""
    frame: Dict[str, Any] = {
        "type": "subscribed",
        "connection_id": "fault-conn",
        "message_id": message_id,
        "channel": request["channel"],
        "contents": contents,
    }
    if "id" in request:
        frame["id"] = request["id"]
    return frame


def channel_data(
    channel: str, id: Optional[str], contents: Any, message_id: int, version: str = "1.0.0"
) -> Dict[str, Any]:
    frame: Dict[str, Any] = {
        "type": "channel_data",
        "connection_id": "fault-conn",
        "message_id": message_id,
        "channel": channel,
        "version": version,
        "contents": contents,
    }
    if id is not None:
        frame["id"] = id
    return frame


def serve_indexer(conn: RawConn, responder: Responder, *, send_connected: bool = True) -> None:
    """Answer pings, hand every subscribe/unsubscribe message to ``responder``, until the client
    goes away or the server stops. Call after ``conn.handshake()``."""
    if send_connected:
        conn.send_json(connected_frame())
    while True:
        try:
            msg = conn.recv_json(timeout=3600)
        except (ConnectionGone, TimeoutError):
            return
        responder(conn, msg)


class FaultServer:
    """A loopback TCP server running ``script(conn)`` on a named thread per connection.

    ``connections`` lists every accepted connection in order; ``accepted`` is set on each
    accept (tests clear and wait on it); ``stop()`` closes every socket and joins every thread.
    Exceptions a script raises (other than the client going away) are kept in ``errors`` so a
    test can assert the script itself did not fail.
    """

    def __init__(self, script: Callable[[RawConn], None]) -> None:
        self.script = script
        self.stopping = threading.Event()
        self.connections: List[RawConn] = []
        self.errors: List[BaseException] = []
        self._cond = threading.Condition()
        self._threads: List[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"ws://127.0.0.1:{self.port}/v4/ws"
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="fault-server-accept", daemon=True
        )

    def __enter__(self) -> FaultServer:
        self._accept_thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def wait_connections(self, n: int, timeout: float = 10.0) -> List[RawConn]:
        """Wait until ``n`` connections have been accepted in total."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.connections) >= n, timeout):
                raise AssertionError(
                    f"{len(self.connections)} connections within {timeout} s, wanted {n}"
                )
            return list(self.connections)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = RawConn(sock, self)
            thread = threading.Thread(
                target=self._run,
                args=(conn,),
                name=f"fault-server-{len(self._threads)}",
                daemon=True,
            )
            with self._cond:
                self.connections.append(conn)
                self._threads.append(thread)
                self._cond.notify_all()
            thread.start()

    def _run(self, conn: RawConn) -> None:
        try:
            self.script(conn)
        except (ConnectionGone, TimeoutError):
            pass
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self._park(conn)

    def _park(self, conn: RawConn) -> None:
        """A script that returns leaves the socket open until the client or the server ends it
        (scripts that want to close do so explicitly)."""
        while not self.stopping.is_set():
            try:
                conn.sock.settimeout(0.1)
                if not conn.sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self) -> None:
        self.stopping.set()
        self._listener.close()
        if self._accept_thread.is_alive():
            self._accept_thread.join(5)
        with self._cond:
            conns, threads = list(self.connections), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sock.close()
        for thread in threads:
            thread.join(5)
