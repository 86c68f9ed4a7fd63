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
import socket
import struct
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

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


def workload(kind: str, n: int) -> Tuple[bytes, List[bytes], int, Dict[str, Any]]:
    """(subscribed frame, n update frames, update size in bytes, subscribe message)."""
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
        raw = json.loads(
            (
                FRAMES_DIR / "v4_subaccounts__channel_data__ntl-fills-orders-positions.json"
            ).read_text()
        )
        update = raw["contents"]
        update["fills"] = update["fills"][:1]
    head = {
        "type": "subscribed",
        "connection_id": "bench",
        "message_id": 1,
        "channel": channel,
        "id": sid,
        "contents": snapshot,
    }
    updates = []
    size = 0
    for i in range(n):
        msg = {
            "type": "channel_data",
            "connection_id": STAMP.decode(),
            "message_id": i + 2,
            "id": sid,
            "channel": channel,
            "version": "1.0.0",
            "contents": update,
        }
        payload = json.dumps(msg, separators=(",", ":")).encode()
        size = len(payload)
        updates.append(frame(payload))
    subscribed = frame(json.dumps(head, separators=(",", ":")).encode())
    return subscribed, updates, size, {"type": "subscribe", "channel": channel, "id": sid}


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


def _serve(listener: socket.socket, bursts: List[bytes], interval: float, stamp: bool) -> None:
    conn, _ = listener.accept()
    try:
        _write(conn, bursts, interval, stamp)
    except OSError:
        pass  # the client left early (it failed, or it stops reading once it has counted)
    finally:
        conn.close()


def _write(conn: socket.socket, bursts: List[bytes], interval: float, stamp: bool) -> None:
    _handshake(conn)
    conn.sendall(HELLO)
    conn.recv(65536)  # the client's subscribe (one small masked frame)
    start = time.monotonic()
    for i, burst in enumerate(bursts):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if stamp:
            burst = burst.replace(STAMP, b"%019d" % time.monotonic_ns())
        conn.sendall(burst)
    while conn.recv(65536):  # wait for the client to leave
        pass


def _server_main(port_q: Any, bursts: List[bytes], interval: float, stamp: bool) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port_q.put(listener.getsockname()[1])
    _serve(listener, bursts, interval, stamp)


def start_server(
    bursts: List[bytes], interval: float = 0.0, stamp: bool = False
) -> Tuple[Any, int]:
    """A one-connection server process writing ``bursts`` ``interval`` seconds apart."""
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    proc = ctx.Process(target=_server_main, args=(q, bursts, interval, stamp), daemon=True)
    proc.start()
    return proc, int(q.get(timeout=10))
