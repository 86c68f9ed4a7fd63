"""Raw clients of the emulator for its conversation tests: plain ``websocket-client`` connections
with timeout-bound receive helpers, never the SDK's own client, so the emulator is checked against
docs/protocol.md and not against our decoder; and an order book rebuilt from raw frames."""

from __future__ import annotations

import json
import struct
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Dict, List, Tuple, Union

import websocket

FAST = dict(block_time=0.05, batch_interval=0.1, warmup_blocks=60, close_timeout=0.5)


def emulator_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dydx-emulator"]


class NoPongWebSocket(websocket.WebSocket):  # type: ignore[misc]
    """A websocket-client socket that never answers ping frames."""

    def pong(self, payload: Union[str, bytes] = "") -> None:
        return None


class Raw:
    """A raw websocket-client connection with timeout-bound receive helpers."""

    def __init__(self, url: str, timeout: float = 5.0, answer_pings: bool = True) -> None:
        kwargs: Dict[str, Any] = {} if answer_pings else {"class_": NoPongWebSocket}
        self.ws = websocket.create_connection(url, timeout=timeout, **kwargs)

    def send(self, message: Union[str, Dict[str, Any]]) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv_text(self, timeout: float = 5.0) -> str:
        self.ws.settimeout(timeout)
        data = self.ws.recv()
        assert isinstance(data, str)
        return data

    def recv(self, timeout: float = 5.0) -> Dict[str, Any]:
        message: Dict[str, Any] = json.loads(self.recv_text(timeout))
        return message

    def recv_until(
        self, pred: Callable[[Dict[str, Any]], bool], timeout: float = 5.0
    ) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("expected message did not arrive")
            message = self.recv(remaining)
            if pred(message):
                return message

    def recv_type(self, kind: str, timeout: float = 5.0, **fields: Any) -> Dict[str, Any]:
        return self.recv_until(
            lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items()), timeout
        )

    def connected(self) -> Dict[str, Any]:
        message = self.recv()
        assert message["type"] == "connected"
        return message

    def frame(self, timeout: float = 5.0) -> Tuple[int, bytes]:
        """The next frame including control frames (pings are auto-answered by the library)."""
        self.ws.settimeout(timeout)
        opcode, frame = self.ws.recv_data_frame(True)
        return opcode, bytes(frame.data)

    def expect_close(self, timeout: float = 5.0) -> Tuple[int, str]:
        """Read until the server's close frame; returns (code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no close frame")
            try:
                opcode, data = self.frame(remaining)
            except websocket.WebSocketConnectionClosedException as exc:
                raise AssertionError("connection closed without a close frame") from exc
            except (BrokenPipeError, ConnectionResetError):
                continue  # answering a buffered ping after the server went away; read on
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.ws.shutdown()  # the library answered the close frame; now drop the TCP
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                return code, data[2:].decode()

    def quiet(self, seconds: float) -> bool:
        """True if no data frame arrives within ``seconds``."""
        try:
            self.recv_text(seconds)
        except websocket.WebSocketTimeoutException:
            return True
        return False

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
        finally:
            self.ws.shutdown()  # also after a server-initiated close, which leaves the TCP open


class StreamBook:
    """An order book rebuilt from raw ``v4_orderbook`` frames (snapshot, then absolute sizes)."""

    def __init__(self) -> None:
        self.sides: Dict[str, Dict[str, str]] = {"bids": {}, "asks": {}}

    def snapshot(self, contents: Dict[str, Any]) -> None:
        for side in ("bids", "asks"):
            self.sides[side] = {level["price"]: level["size"] for level in contents[side]}

    def update(self, contents: Dict[str, Any]) -> None:
        for side, levels in contents.items():
            for price, size in levels:
                if size == "0":
                    self.sides[side].pop(price, None)
                else:
                    self.sides[side][price] = size

    def apply(self, message: Dict[str, Any]) -> None:
        if message["type"] == "subscribed":
            self.snapshot(message["contents"])
        elif message["type"] == "channel_data":
            self.update(message["contents"])
        elif message["type"] == "channel_batch_data":
            for contents in message["contents"]:
                self.update(contents)

    def as_rest(self, limit: int = 100) -> Dict[str, List[Dict[str, str]]]:
        out: Dict[str, List[Dict[str, str]]] = {}
        for side in ("bids", "asks"):
            prices = sorted(self.sides[side], key=Decimal, reverse=(side == "bids"))[:limit]
            out[side] = [{"price": p, "size": self.sides[side][p]} for p in prices]
        return out
