"""A small asyncio HTTP/1.1 server (keep-alive, GET only) that serves :class:`rest.Comlink`.

It also applies comlink's per-IP rate limits (the global one optional; per-route ones for
``/v4/orders`` and ``/v4/fills``, 100 per 10 s by default) and the "reject with 429" fault: 429
bodies are ``{"errors":[{"msg":"Too many requests"}]}`` with ``Retry-After`` in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable, Dict, Optional, Set, Tuple

from .rest import RestResponse, not_found

log = logging.getLogger("dydx_ws.emulator.httpd")

REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
TOO_MANY = '{"errors":[{"msg":"Too many requests"}]}'
MAX_HEADER = 64 * 1024


class RestRateLimiter:
    """rate-limiter-flexible style fixed window per client IP (``points`` per ``seconds``)."""

    def __init__(self, points: int, seconds: float) -> None:
        self.points = points
        self.seconds = seconds
        self._windows: Dict[str, Tuple[float, int]] = {}

    def consume(self, key: str, now: float) -> Tuple[bool, int, float]:
        """Returns (allowed, remaining, window end epoch seconds)."""
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.seconds:
            start, used = now, 0
        used += 1
        self._windows[key] = (start, used)
        return used <= self.points, max(self.points - used, 0), start + self.seconds


class HttpServer:
    """Serves ``handler(target) -> RestResponse`` on an asyncio server; all in the caller's loop."""

    def __init__(self, handler: Callable[[str], RestResponse]) -> None:
        self.handler = handler
        self.server: Optional[asyncio.base_events.Server] = None
        self.port = 0
        self.limiter: Optional[RestRateLimiter] = None
        self.candles_limiter: Optional[RestRateLimiter] = None
        self.route_limiters: Dict[str, RestRateLimiter] = {}  # path prefix -> its own limit
        self.reject_until = 0.0
        self.reject_status = 429
        self.requests_served = 0
        self.connections_accepted = 0
        self._writers: Set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in list(self._writers):
            writer.close()
        await self.server.wait_closed()
        for writer in list(self._writers):
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections_accepted += 1
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else "?"
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    await self._write(
                        writer, RestResponse(400, "Bad Request", {}, "text/plain"), False
                    )
                    return
                method, target, version = parts
                headers: Dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                connection = headers.get("connection", "").lower()
                keep = connection != "close" and (
                    version == "HTTP/1.1" or connection == "keep-alive"
                )
                response = self._respond(method, target, ip)
                await self._write(writer, response, keep, head_only=(method == "HEAD"))
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # pragma: no cover - defensive: never kill the loop
            log.exception("HTTP handler failed")
        finally:
            self._writers.discard(writer)
            writer.close()

    def _route_limiter(self, target: str) -> Optional[RestRateLimiter]:
        path = target.split("?", 1)[0]
        for route, limiter in self.route_limiters.items():
            if path == route or path.startswith(route + "/"):
                return limiter
        return None

    def _respond(self, method: str, target: str, ip: str) -> RestResponse:
        self.requests_served += 1
        now = time.time()
        if now < self.reject_until:
            retry_ms = int((self.reject_until - now) * 1000) + 1
            return RestResponse(self.reject_status, TOO_MANY, {"Retry-After": str(retry_ms)})
        limiter = self.candles_limiter if "/v4/candles/" in target else self.limiter
        rate_headers: Dict[str, str] = {}
        for current in (limiter, self._route_limiter(target)):
            if current is None:
                continue
            allowed, remaining, reset = current.consume(ip, now)
            rate_headers = {
                "RateLimit-Limit": str(current.points),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(int(reset * 1000)),
            }
            if not allowed:
                rate_headers["Retry-After"] = str(max(int((reset - now) * 1000), 1))
                return RestResponse(429, TOO_MANY, rate_headers)
        if method not in ("GET", "HEAD"):
            return not_found(method, target.split("?", 1)[0])
        try:
            response = self.handler(target)
        except Exception:
            log.exception("REST handler failed for %s", target)
            response = RestResponse(500, '{"errors":[{"msg":"Internal Server Error"}]}')
        response.headers.update(rate_headers)
        return response

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        response: RestResponse,
        keep: bool,
        head_only: bool = False,
    ) -> None:
        body = response.body.encode()
        lines = [
            f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
            "Access-Control-Allow-Origin: *",
            f"Connection: {'keep-alive' if keep else 'close'}",
        ]
        lines.extend(f"{k}: {v}" for k, v in response.headers.items())
        writer.write(
            ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)
        )
        await writer.drain()
