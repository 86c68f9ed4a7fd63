"""Opening a WebSocket link against one deadline: TCP (optionally through a proxy), TLS, and the
HTTP upgrade, each wait bounded by what is left of ``connect_timeout`` and cut short by
``stop()``.

websocket-client would otherwise bound each single read by the socket timeout, so a server that
trickles its TLS records or header bytes holds an attempt forever, and it reads a refusal's whole
body into memory. Here the socket is opened by :func:`open_socket` and handed to websocket-client
as its pre-connected ``socket=`` wrapped in a :class:`HandshakeSocket`, which enforces the
deadline and a response size limit, and turns any status other than 101 into
:class:`HandshakeRefused` (with ``Retry-After``) before a body is read.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import errno
import math
import os
import selectors
import socket
import ssl
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import unquote, urlsplit

import websocket

from ..errors import DydxConnectionError

__all__ = [
    "HandshakeError",
    "HandshakeRefused",
    "HandshakeSocket",
    "check_upgrade",
    "open_socket",
    "parse_retry_after",
]

Interrupted = Callable[[], bool]


class HandshakeError(DydxConnectionError, websocket.WebSocketException):
    """The link could not be opened as a WebSocket: oversized or invalid response, or stopped."""


class HandshakeRefused(HandshakeError):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        excerpt = body[:200].decode("utf-8", "replace")
        super().__init__(f"handshake refused: HTTP {status}" + (f": {excerpt}" if excerpt else ""))
        self.status_code = status
        self.headers = headers
        self.body = body
        self.retry_after = parse_retry_after(headers.get("retry-after"))


class _Waiter:
    """Waits for a socket until an absolute deadline, or until the wake socket says stop."""

    def __init__(self, deadline: float, wake: Optional[socket.socket], interrupted: Interrupted):
        self.deadline = deadline
        self._wake = wake
        self._interrupted = interrupted

    def wait(self, sock: Any, events: int, what: str) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, events)
            if self._wake is not None:
                sel.register(self._wake, selectors.EVENT_READ)
            while True:
                if self._interrupted():
                    raise HandshakeError(f"stopped during {what}")
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    raise websocket.WebSocketTimeoutException(f"connect timeout during {what}")
                for key, _ in sel.select(remaining):
                    if key.fileobj is sock:
                        return
                    with contextlib.suppress(OSError):  # a wake-up: drained, then re-checked
                        self._wake.recv(4096)  # type: ignore[union-attr]


def open_socket(
    url: str,
    *,
    deadline: float,
    sslopt: Optional[Dict[str, Any]],
    proxy: Optional[str],
    wake: Optional[socket.socket] = None,
    interrupted: Interrupted = lambda: False,
) -> socket.socket:
    """A connected (and for ``wss://`` TLS-wrapped) socket to ``url``'s host, non-blocking.

    ``proxy``: ``http://[user:pw@]host:port`` (HTTP CONNECT) or ``socks5://...`` (needs the
    optional ``python-socks`` package)."""
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    waiter = _Waiter(deadline, wake, interrupted)
    if proxy and urlsplit(proxy).scheme.lower().startswith("socks"):
        sock = _socks_connect(proxy, host, port, deadline)
    elif proxy:
        p = urlsplit(proxy)
        sock = _tcp_connect(p.hostname or "", p.port or 8080, waiter)
        try:
            _http_tunnel(sock, host, port, p.username, p.password, waiter)
        except BaseException:
            sock.close()
            raise
    else:
        sock = _tcp_connect(host, port, waiter)
    if not secure:
        return sock
    try:
        tls: socket.socket = _tls_wrap(sock, host, sslopt or {}, waiter)
        return tls
    except BaseException:
        sock.close()
        raise


def _tcp_connect(host: str, port: int, waiter: _Waiter) -> socket.socket:
    error: Optional[OSError] = None
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            where = ":".join(str(part) for part in address[:2])
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise OSError(code, f"connect to {where}: {os.strerror(code)}")
            waiter.wait(sock, selectors.EVENT_WRITE, "TCP connect")
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"connect to {where}: {os.strerror(code)}")
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error or OSError(f"no address for {host}:{port}")


def _http_tunnel(
    sock: socket.socket,
    host: str,
    port: int,
    user: Optional[str],
    password: Optional[str],
    waiter: _Waiter,
) -> None:
    request = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if user:
        token = base64.b64encode(f"{unquote(user)}:{unquote(password or '')}".encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    _send_all(sock, (request + "\r\n").encode(), waiter)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = _recv_some(sock, 1, waiter, "proxy CONNECT")  # nothing after the header
        if not chunk:
            raise HandshakeError("the proxy closed the connection during CONNECT")
        head += chunk
        if len(head) > 16384:
            raise HandshakeError("the proxy's CONNECT response is too large")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        raise HandshakeError(f"proxy CONNECT failed: {head.splitlines()[0]!r}")


def _socks_connect(proxy: str, host: str, port: int, deadline: float) -> socket.socket:
    try:
        from python_socks.sync import Proxy  # type: ignore[import-not-found]
    except ImportError as exc:
        raise HandshakeError("a SOCKS proxy needs the python-socks package") from exc
    remaining = max(0.001, deadline - time.monotonic())
    sock = Proxy.from_url(proxy).connect(dest_host=host, dest_port=port, timeout=remaining)
    sock.setblocking(False)
    return sock  # type: ignore[no-any-return]


def _send_all(sock: Any, data: bytes, waiter: _Waiter) -> None:
    """Write everything to a non-blocking socket, waiting for room until the deadline."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, ssl.SSLWantWriteError):
            waiter.wait(sock, selectors.EVENT_WRITE, "the handshake")
        except ssl.SSLWantReadError:
            waiter.wait(sock, selectors.EVENT_READ, "the handshake")


def _recv_some(sock: Any, bufsize: int, waiter: _Waiter, what: str) -> bytes:
    """Read from a non-blocking socket (TLS-buffered bytes first), waiting until the deadline."""
    while True:
        try:
            return bytes(sock.recv(bufsize))
        except (BlockingIOError, ssl.SSLWantReadError):
            waiter.wait(sock, selectors.EVENT_READ, what)
        except ssl.SSLWantWriteError:
            waiter.wait(sock, selectors.EVENT_WRITE, what)


def tls_context(sslopt: Dict[str, Any]) -> ssl.SSLContext:
    """An ``SSLContext`` from websocket-client style ``sslopt``: ``context`` (used as is),
    ``cert_reqs``, ``check_hostname``, ``ca_certs``, ``ca_cert_path``, ``certfile``,
    ``keyfile``, ``password``, ``ciphers``."""
    given = sslopt.get("context")
    if isinstance(given, ssl.SSLContext):
        return given
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cert_reqs = sslopt.get("cert_reqs", ssl.CERT_REQUIRED)
    check_hostname = bool(sslopt.get("check_hostname", cert_reqs != ssl.CERT_NONE))
    context.check_hostname = check_hostname and cert_reqs != ssl.CERT_NONE
    context.verify_mode = cert_reqs
    if cert_reqs != ssl.CERT_NONE:
        cafile, capath = sslopt.get("ca_certs"), sslopt.get("ca_cert_path")
        if cafile or capath:
            context.load_verify_locations(cafile=cafile, capath=capath)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if sslopt.get("certfile"):
        context.load_cert_chain(sslopt["certfile"], sslopt.get("keyfile"), sslopt.get("password"))
    if "ciphers" in sslopt:
        context.set_ciphers(sslopt["ciphers"])
    return context


def _tls_wrap(sock: socket.socket, host: str, sslopt: Dict[str, Any], waiter: _Waiter) -> Any:
    context = tls_context(sslopt)
    server_name = sslopt.get("server_hostname") or host
    tls = context.wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            waiter.wait(tls, selectors.EVENT_READ, "TLS handshake")
        except ssl.SSLWantWriteError:
            waiter.wait(tls, selectors.EVENT_WRITE, "TLS handshake")
    return tls


class HandshakeSocket:
    """The socket as websocket-client sees it during the HTTP upgrade: every read and write
    waits at most until the attempt's deadline (the socket is non-blocking), the response may
    not exceed ``max_size`` bytes, and a status other than 101 raises :class:`HandshakeRefused`
    once the headers are in (the body is not waited for: only what already arrived is kept)."""

    def __init__(
        self,
        sock: Any,
        *,
        deadline: float,
        max_size: int,
        wake: Optional[socket.socket] = None,
        interrupted: Interrupted = lambda: False,
    ) -> None:
        self.sock = sock
        self._waiter = _Waiter(deadline, wake, interrupted)
        self._max_size = max_size
        self._head = b""

    def recv(self, bufsize: int) -> bytes:
        room = self._max_size - len(self._head)
        if room <= 0:
            raise HandshakeError(f"handshake response exceeds {self._max_size} bytes")
        data = _recv_some(self.sock, min(bufsize, room), self._waiter, "the HTTP upgrade")
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end >= 0:
            status, headers = _parse_head(self._head[:end])
            if status != 101:
                raise HandshakeRefused(status, headers, self._drain_body(end + 4))
        return data

    def _drain_body(self, start: int) -> bytes:
        """What already arrived of a refusal's body (never waiting, within the size limit)."""
        body = self._head[start:]
        with contextlib.suppress(OSError):  # incl. nothing ready (the socket never blocks)
            room = self._max_size - len(self._head)
            if room > 0:
                body += self.sock.recv(room)
        return body

    def send(self, data: Any) -> int:
        _send_all(self.sock, bytes(data), self._waiter)
        return len(data)

    def gettimeout(self) -> Optional[float]:
        return max(0.001, self._waiter.deadline - time.monotonic())

    def settimeout(self, _timeout: Optional[float]) -> None:
        """websocket-client's own timeout does not apply: the deadline does."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _parse_head(head: bytes) -> Tuple[int, Dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise HandshakeError(f"invalid HTTP status line {lines[0][:100]!r}") from None
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def check_upgrade(headers: Dict[str, str]) -> None:
    """RFC 6455 4.1: a 101 may not select an extension or subprotocol the client did not offer
    (it offers none). Raises :class:`HandshakeError`."""
    for name in ("sec-websocket-extensions", "sec-websocket-protocol"):
        value = headers.get(name)
        if value:
            raise HandshakeError(f"the server selected {name} {value[:100]!r}, never offered")


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds from an HTTP ``Retry-After`` value (delta-seconds or an HTTP date); None if
    absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.now(timezone.utc).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
