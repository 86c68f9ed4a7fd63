"""Shared by the benchmarks: a minimal RFC 6455 server in a child process and the workloads.

The server writes pre-encoded frames with one ``sendall`` per burst, so it is never the
bottleneck and never competes for the measured process's GIL. A burst may be *stamped*: every
frame's ``connection_id`` carries the ``time.monotonic_ns()`` at which the server wrote the burst
(CLOCK_MONOTONIC is one clock for every process on Linux), so a client can report latency from
server write to callback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing as mp
import select
import socket
import struct
import time
from pathlib import Path
from typing import Any, Dict, Tuple

ROOT = Path(__file__).resolve().parents[1]
FRAMES_DIR = ROOT / "tests" / "fixtures" / "frames"
ADDRESS = "dydx1kzsvkf2ghjqlysuffdkhcdctknl4rsvcx5hkm5"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STAMP = b"0000000000000000000"  # 19 digits: replaced by the write time in stamped bursts


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


HELLO = frame(b'{"type":"connected","connection_id":"bench","message_id":0}')


class Workload:
    """Frames of one subscription: the ``subscribed`` frame and update ``i`` built on demand
    (message ids count up; ``STAMP`` stands where a stamped burst writes its time)."""

    def __init__(self, kind: str) -> None:
        if kind == "book":
            sid, channel = "BTC-USD", "v4_orderbook"
            snapshot: Dict[str, Any] = {
                "bids": [{"price": "65000", "size": "1"}],
                "asks": [{"price": "65001", "size": "1"}],
            }
            update: Dict[str, Any] = {"bids": [["65920", "0.125"]]}
        else:
            sid, channel = f"{ADDRESS}/0", "v4_subaccounts"
            snapshot = {}
            name = "v4_subaccounts__channel_data__ntl-fills-orders-positions.json"
            update = json.loads((FRAMES_DIR / name).read_text())["contents"]
            update["fills"] = update["fills"][:1]
        head = {
            "type": "subscribed",
            "connection_id": "bench",
            "message_id": 1,
            "channel": channel,
            "id": sid,
            "contents": snapshot,
        }
        self.subscribe = {"type": "subscribe", "channel": channel, "id": sid}
        self.subscribed = frame(json.dumps(head, separators=(",", ":")).encode())
        body = {
            "type": "channel_data",
            "connection_id": STAMP.decode(),
            "message_id": 424242424242,
            "id": sid,
            "channel": channel,
            "version": "1.0.0",
            "contents": update,
        }
        text = json.dumps(body, separators=(",", ":")).replace("%", "%%")
        self._template = text.replace("424242424242", "%d").encode()
        self.size = len(self.update(2)) - 4

    def update(self, i: int) -> bytes:
        """The frame of update ``i`` (message id ``i + 2``)."""
        return frame(self._template % (i + 2))

    def updates(self, start: int, count: int) -> bytes:
        return b"".join(self.update(i) for i in range(start, start + count))


def _handshake(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("client left during the handshake")
        request += chunk
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def _serve(listener: socket.socket, plan: Tuple[Any, ...]) -> None:
    conn, _ = listener.accept()
    try:
        _write(conn, *plan)
    except OSError:
        pass  # the client left early (it failed, or it stops reading once it has counted)
    finally:
        conn.close()


class _ClientFrames:
    """The client's side of the conversation, answered as a server must: a ping gets its pong
    (the SDK and ``websockets`` close a connection whose pings go unanswered, which a long run
    would otherwise measure) and a close its close (so clients leave at once)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""
        self.closed = False

    def serve(self, timeout: float) -> None:
        """Answer what the client sends within ``timeout`` seconds (0: what is already there)."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            ready, _, _ = select.select([self.conn], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return
            chunk = self.conn.recv(65536)
            if not chunk:
                self.closed = True
                return
            self.buf += chunk
            self._answer()

    def _answer(self) -> None:
        while len(self.buf) >= 6:
            opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            start = 2 + {126: 2, 127: 8}.get(n, 0)
            if n >= 126:
                n = int.from_bytes(self.buf[2:start], "big")
            end = start + 4 + n  # client frames are masked: a 4-byte key, then the payload
            if len(self.buf) < end:
                return
            key, data = self.buf[start : start + 4], self.buf[start + 4 : end]
            self.buf = self.buf[end:]
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(data))
            if opcode == 0x9:
                self.conn.sendall(bytes([0x8A, len(payload)]) + payload)
            elif opcode == 0x8:
                self.conn.sendall(bytes([0x88, len(payload[:2])]) + payload[:2])
                self.closed = True


def _write(conn: socket.socket, kind: str, n: int, burst: int, interval: float) -> None:
    """Flood (``interval`` 0: every update in one write) or stamped bursts of ``burst`` updates
    every ``interval`` seconds, built just before they are written; the client's pings and
    close are answered between bursts and after the last."""
    work = Workload(kind)
    flood = work.subscribed + work.updates(0, n) if interval == 0 else b""
    _handshake(conn)
    conn.sendall(HELLO)
    conn.recv(65536)  # the client's subscribe (one small masked frame)
    client = _ClientFrames(conn)
    if flood:
        conn.sendall(flood)
    else:
        conn.sendall(work.subscribed)
        start = time.monotonic()
        for k, first in enumerate(range(0, n, burst)):
            data = work.updates(first, min(burst, n - first))
            client.serve(start + (k + 1) * interval - time.monotonic())
            conn.sendall(data.replace(STAMP, b"%019d" % time.monotonic_ns()))
    while not client.closed:  # until the client leaves
        client.serve(60.0)


def _server_main(port_q: Any, plan: Tuple[Any, ...]) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port_q.put(listener.getsockname()[1])
    _serve(listener, plan)


def start_server(kind: str, n: int, burst: int = 0, interval: float = 0.0) -> Tuple[Any, int]:
    """A one-connection server process: a flood of ``n`` updates (``interval`` 0) or bursts."""
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    proc = ctx.Process(target=_server_main, args=(q, (kind, n, burst, interval)), daemon=True)
    proc.start()
    return proc, int(q.get(timeout=10))
