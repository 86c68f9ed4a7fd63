"""The I/O thread: one WebSocket at a time, kept alive by our own reconnect loop.

Architecture::

    thread "dydx-ws-io":
      loop until stop():
        WebSocketApp.run_forever(dispatcher=<hand-off>)   # connect + handshake, then returns
        serve(): select([socket, wake-pipe], timeout)      # every byte of I/O happens here
          - readable socket   -> websocket-client reads one frame -> listener.on_frame(data)
          - due sends         -> paced: <= 2 subscribes per (channel, id) per ~1.2 s
          - heartbeat         -> a ping frame every ping_interval; no pong within pong_timeout
                                 means a dead or half-open link: drop it and reconnect
          - stop() / send()   -> the wake-pipe interrupts select at once
        sleep(backoff) interruptibly; >= 30 s after an HTTP 429 at the handshake

Why a hand-off dispatcher: given a custom ``dispatcher=`` object, ``run_forever`` performs the
connect and handshake, registers its frame reader with that object and returns. We keep the
reader and run our own select loop, so heartbeat, pacing, stop and reading share one thread,
websocket-client's own ping thread and fixed-sleep ``reconnect=`` are never used, and the server's
ping frames are answered (websocket-client does that inside the read) even while user callbacks
block on the worker threads. The listener's callbacks run on this thread and must be quick.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Hashable, List, Optional, Protocol, Tuple

import websocket

from .reconnect import ReconnectPolicy

__all__ = ["CloseInfo", "Connection", "ConnectionListener", "ConnectionOptions"]

log = logging.getLogger("dydx_ws.connection")



class _DemoteOwnThreadRecords(logging.Filter):
    """websocket-client logs every close at ERROR ("... - goodbye"). On our I/O thread those are
    expected and reported through the client's events, so they are demoted to DEBUG; records
    from other users of websocket-client in the process are left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.threadName and record.threadName.startswith("dydx-ws-io"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return log.isEnabledFor(logging.DEBUG)  # the level check already ran at ERROR
        return True


logging.getLogger("websocket").addFilter(_DemoteOwnThreadRecords())

SUBSCRIBE_WINDOW = 1.2  # seconds; the server allows 2 subscribes per channel+id per 1 s window
SUBSCRIBES_PER_WINDOW = 2
_MAX_WAIT = 1.0  # the serve loop wakes at least this often
_READ_SIZE = 65536  # bytes asked of the socket per read
_BURST = 64  # frames read back to back before sends, pings and ticks are looked at again


@dataclass(frozen=True)
class ConnectionOptions:
    """Transport settings (see :class:`~dydx_ws.DydxWebSocketClient` for their meaning)."""

    url: str
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    ping_interval: float = 20.0
    pong_timeout: float = 10.0
    connect_timeout: float = 10.0
    sslopt: Optional[Dict[str, Any]] = None
    proxy: Dict[str, Any] = field(default_factory=dict)
    headers: Optional[Dict[str, str]] = None
    thread_name: str = "dydx-ws-io"


@dataclass
class CloseInfo:
    """How a connection attempt or session ended."""

    was_open: bool
    code: Optional[int] = None
    reason: str = ""
    error: Optional[BaseException] = None
    rate_limited: bool = False
    opened_at: Optional[float] = None
    closed_at: float = 0.0

    def describe(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.reason:
            parts.append(repr(self.reason))
        if self.error is not None:
            parts.append(f"{type(self.error).__name__}: {self.error}")
        return ", ".join(parts) or "closed"


class ConnectionListener(Protocol):
    """What the connection reports; every method runs on the I/O thread and must not block."""

    def on_open(self) -> None: ...

    def on_frame(self, data: Any) -> object: ...

    def on_idle(self) -> None: ...

    def on_close(self, info: CloseInfo) -> None: ...

    def on_retry(self, delay: float, attempt: int, info: CloseInfo) -> None: ...

    def on_give_up(self, info: CloseInfo) -> None: ...

    def on_tick(self, now: float) -> None: ...


class _HandOff:
    """The ``dispatcher=`` object websocket-client registers its frame reader with (we run the
    loop ourselves); sends go straight to the socket."""

    def __init__(self) -> None:
        self.read_callback: Optional[Callable[[], bool]] = None

    def read(self, sock: Any, read_callback: Callable[[], bool], *_: Any) -> None:
        self.read_callback = read_callback

    def signal(self, *_: Any) -> None:
        """websocket-client installs a SIGINT handler through this; we leave signals alone."""

    def abort(self, *_: Any) -> None:
        """Part of the dispatcher protocol; our loop is stopped through :meth:`Connection.stop`."""

    def timeout(self, seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        """Only used by websocket-client for ping_timeout/reconnect, both of which we disable."""

    def buffwrite(self, sock: Any, data: Any, send: Callable[[Any, Any], int], _: Any) -> int:
        return send(sock, data)


class _SendPacer:
    """Allows at most ``SUBSCRIBES_PER_WINDOW`` subscribes per key within ``SUBSCRIBE_WINDOW``."""

    def __init__(self) -> None:
        self._sent: Dict[Hashable, Deque[float]] = {}

    def ready_at(self, key: Hashable, now: float) -> float:
        times = self._sent.get(key)
        if not times or len(times) < SUBSCRIBES_PER_WINDOW:
            return now
        return max(now, times[0] + SUBSCRIBE_WINDOW)

    def record(self, key: Hashable, now: float) -> None:
        times = self._sent.setdefault(key, deque(maxlen=SUBSCRIBES_PER_WINDOW))
        times.append(now)

    def reset(self) -> None:
        self._sent.clear()


class _BufferedSocket:
    """The connected socket, read in large chunks.

    websocket-client asks for exact byte counts (header, length, payload: 2-3 ``recv`` calls per
    frame). Each system call releases and re-acquires the GIL, and with worker threads running
    that hand-off dominated the receive path. One 64 KiB ``recv`` here serves many frames, and
    the serve loop reads buffered frames without waiting in ``select``; a frame cut by the end of
    a read is completed here too (``need`` / ``fill``), so websocket-client's own reader only
    sees control frames, fragments and anything unusual. Everything else is the real socket's.
    """

    __slots__ = ("_buf", "_eof", "_pending", "_pos", "_readable_now", "_sock", "need")

    def __init__(self, sock: Any, readable_now: Callable[[], bool]) -> None:
        self._sock = sock
        self._readable_now = readable_now  # does the socket have bytes, without waiting?
        self._pending: Optional[Callable[[], int]] = getattr(sock, "pending", None)  # TLS
        self._buf = b""
        self._pos = 0
        self._eof = False
        #: Bytes still missing from a fast-path frame at the head of the buffer (0: none).
        self.need = 0

    def recv(self, bufsize: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = bytes(self._sock.recv(max(bufsize, _READ_SIZE)))
            if not buf:
                self._eof = True
                return buf
            self._buf, pos = buf, 0
        end = pos + bufsize
        self._pos = end
        return buf[pos:end]  # copies only the slice, never the rest of the buffer

    def next_data_frame(self) -> Optional[bytes]:
        """The payload of the next frame if it is a complete, final, unmasked text or binary
        frame already in the buffer (the common case, parsed here in a few operations);
        otherwise None and nothing is consumed. ``need`` then says how many more bytes such a
        frame still needs (see ``fill``), or is 0 when websocket-client must read what comes
        next (control frames, fragments, anything else). websocket-client keeps no parser state
        between frames, so the two never see half a frame each."""
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
            head = 10
        end = pos + head + n
        if end > len(buf):
            self.need = 0 if self._eof else end - len(buf)
            return None
        self._pos = end
        return buf[pos + head : end]

    def fill(self) -> bool:
        """Append what the socket has ready (without waiting) to the unread bytes; False if
        nothing was ready. At end of stream ``need`` stays 0, so websocket-client's reader runs
        into the close and reports it."""
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@dataclass
class _Outgoing:
    text: str
    key: Hashable
    is_subscribe: bool
    not_before: float = 0.0


class Connection:
    """Owns the I/O thread and the socket; everything else talks to it through ``send``."""

    def __init__(self, options: ConnectionOptions, listener: ConnectionListener) -> None:
        self._opt = options
        self._listener = listener
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._outgoing: Deque[_Outgoing] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._pacer = _SendPacer()
        self._backoff = options.reconnect.backoff()
        self._app: Optional[websocket.WebSocketApp] = None
        self._close: Dict[str, Any] = {}
        self._last_pong = 0.0
        self._ping_sent = 0.0
        self.connected = threading.Event()
        self._handshaking = False
        self.frames_received = 0
        self.bytes_received = 0

    # -- lifecycle (any thread) ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._opt.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Close the socket (code 1000) and join the I/O thread; True if it has exited."""
        self._stop.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            deadline = time.monotonic() + timeout
            while True:
                if self._handshaking:
                    # A handshake in progress would otherwise block until its timeout; its socket
                    # may appear only once the TCP connect returns, so abort again until it ends.
                    self._abort_socket()
                thread.join(max(0.0, min(0.05, deadline - time.monotonic())))
                if not thread.is_alive() or time.monotonic() >= deadline:
                    break
            alive = thread.is_alive()
        else:
            if self._handshaking:
                self._abort_socket()
            alive = False
        if not alive:
            self._close_wake_pipe()
        return not alive

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def send(
        self, text: str, *, key: Hashable = None, subscribe: bool = False, delay: float = 0.0
    ) -> None:
        """Queue a text frame; subscribes are paced per key. Sent only while connected (frames
        queued while disconnected are dropped at reconnect: the listener re-sends state)."""
        item = _Outgoing(text, key, subscribe, time.monotonic() + delay if delay else 0.0)
        with self._lock:
            self._outgoing.append(item)
        self._wake()

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The I/O thread once started."""
        return self._thread

    def drop_connection(self) -> None:
        """Abort the current socket (no close handshake); the loop reconnects."""
        self._abort_socket()
        self._wake()

    def _abort_socket(self) -> None:
        """Shut the socket down from any thread: a read blocked on it (in the handshake or the
        serve loop) returns at once. (A TCP connect still in progress is bounded by
        ``connect_timeout`` instead: its socket is not reachable yet.)"""
        app = self._app
        ws = app.sock if app is not None else None
        raw = ws.sock if ws is not None else None
        if raw is not None:
            with contextlib.suppress(OSError):  # already closed is fine
                raw.shutdown(socket.SHUT_RDWR)

    # -- I/O thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self._backoff
        try:
            while not self._stop.is_set():
                info = self._session()
                self.connected.clear()
                if info.was_open:
                    self._listener.on_close(info)
                if self._stop.is_set():
                    break
                delay = backoff.next_delay(rate_limited=info.rate_limited)
                if delay is None:
                    self._listener.on_give_up(info)
                    break
                self._listener.on_retry(delay, backoff.attempts, info)
                if self._stop.wait(delay):
                    break
        except BaseException:  # pragma: no cover - a bug here must be loud, not a silent death
            log.exception("the I/O thread crashed")
            raise
        finally:
            self.connected.clear()

    def _session(self) -> CloseInfo:
        """One connect attempt and, if it opens, serve it until it closes."""
        self._close = {}
        with self._lock:
            self._outgoing.clear()  # anything queued for a previous socket is stale
        self._pacer.reset()
        handoff = _HandOff()
        app = websocket.WebSocketApp(
            self._opt.url,
            header=self._handshake_headers,
            on_open=lambda _ws: None,
            on_message=self._on_message,
            on_error=self._on_error,
            on_close=self._on_close,
            on_pong=self._on_pong,
        )
        self._app = app
        proxy = self._opt.proxy
        self._handshaking = True  # stop() aborts the socket until the handshake is over
        try:
            app.run_forever(
                dispatcher=handoff,
                sslopt=self._opt.sslopt,
                skip_utf8_validation=True,  # json.loads rejects invalid UTF-8 anyway
                reconnect=0,
                ping_interval=0,
                **proxy,
            )
        except Exception as exc:
            self._close.setdefault("error", exc)
        finally:
            self._handshaking = False
        if handoff.read_callback is None or app.sock is None or app.sock.sock is None:
            self._app = None
            return self._info(was_open=False, opened_at=None)
        opened_at = time.monotonic()
        self._backoff.connected()  # stability (and the backoff reset) counts from here
        self.connected.set()
        self._listener.on_open()
        try:
            self._serve(app, handoff.read_callback)
        except Exception as exc:
            self._close.setdefault("error", exc)
        finally:
            self.connected.clear()
            self._teardown(app, graceful=self._stop.is_set())
            self._app = None
        return self._info(was_open=True, opened_at=opened_at)

    def _handshake_headers(self) -> List[str]:
        # websocket-client calls this right before connect(): the moment to bound the connect and
        # handshake time of this socket without touching the library's process-wide default.
        app = self._app
        if app is not None and app.sock is not None:
            app.sock.settimeout(self._opt.connect_timeout)
        return [f"{k}: {v}" for k, v in (self._opt.headers or {}).items()]

    def _serve(self, app: websocket.WebSocketApp, read: Callable[[], bool]) -> None:
        ws = app.sock
        assert ws is not None and ws.sock is not None
        probe = selectors.DefaultSelector()  # "readable right now?" for frames cut by a read
        probe.register(ws.sock, selectors.EVENT_READ)
        sock = _BufferedSocket(ws.sock, lambda: bool(probe.select(0)))
        ws.sock = sock  # type: ignore[assignment]
        buffered = sock.buffered
        next_data_frame = sock.next_data_frame
        on_message = self._on_message
        fast_ok = ws.cont_frame.recving_frames is None  # not inside a fragmented message
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ, "socket")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._last_pong = self._ping_sent = 0.0
        next_ping = time.monotonic() + self._opt.ping_interval
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                self._listener.on_tick(now)
                wait = min(self._flush_sends(ws, now), _MAX_WAIT)
                if self._opt.ping_interval > 0:
                    # One ping in flight at a time: the pong deadline runs from the first
                    # unanswered ping, so frequent pings can never postpone it.
                    if self._ping_sent and self._last_pong < self._ping_sent:
                        deadline = self._ping_sent + self._opt.pong_timeout
                        if now >= deadline:
                            raise websocket.WebSocketTimeoutException(
                                f"no pong within {self._opt.pong_timeout:g} s"
                            )
                        wait = min(wait, deadline - now)
                    elif now >= next_ping:
                        ws.ping(b"")
                        self._ping_sent = now
                        next_ping = now + self._opt.ping_interval
                        wait = min(wait, self._opt.pong_timeout)
                    else:
                        wait = min(wait, next_ping - now)
                events: List[Tuple[Any, int]] = []
                if buffered():
                    readable = True
                else:
                    self._listener.on_idle()  # about to block: wake workers with pending items
                    events = sel.select(max(0.0, wait))
                    readable = any(key.data == "socket" for key, _ in events)
                if any(key.data == "wake" for key, _ in events):
                    self._drain_wake()
                if readable:
                    # Frames already buffered are read back to back; the housekeeping above
                    # (sends, pings, ticks) runs again at least every _BURST frames.
                    for _ in range(_BURST):
                        payload = next_data_frame() if fast_ok else None
                        if payload is not None:
                            on_message(None, payload)
                        elif fast_ok and sock.need:
                            if not sock.fill():
                                break  # the rest of the frame has not arrived: select
                            continue
                        # websocket-client's reader returns False on a close frame but True
                        # ("has errored") after tearing the socket down on an error: both end
                        # the session, which a closed socket shows as app.sock being None.
                        elif not read() or app.sock is None:
                            return  # on_close / on_error recorded code, reason and error
                        else:
                            fast_ok = ws.cont_frame.recving_frames is None
                        if not buffered():
                            break
        finally:
            sel.close()
            probe.close()

    def _flush_sends(self, ws: websocket.WebSocket, now: float) -> float:
        """Send what is due; return how long until the next deferred send (or _MAX_WAIT)."""
        with self._lock:
            if not self._outgoing:
                return _MAX_WAIT
            queue, self._outgoing = self._outgoing, deque()
        wait = _MAX_WAIT
        deferred: Deque[_Outgoing] = deque()
        blocked: set = set()  # type: ignore[type-arg]  # keep per-key order
        for item in queue:
            due = item.not_before
            if item.is_subscribe:
                due = max(due, self._pacer.ready_at(item.key, now))
            if due > now or item.key in blocked:
                deferred.append(item)
                blocked.add(item.key)
                wait = min(wait, max(0.0, due - now))
                continue
            ws.send(item.text)
            if item.is_subscribe:
                self._pacer.record(item.key, now)
        if deferred:
            with self._lock:
                deferred.extend(self._outgoing)
                self._outgoing = deferred
        return wait

    def _teardown(self, app: websocket.WebSocketApp, graceful: bool) -> None:
        ws = app.sock
        app.keep_running = False
        if ws is None:
            return
        try:
            if graceful and ws.connected:
                ws.close(status=websocket.STATUS_NORMAL, timeout=1.0)
        except Exception:  # best effort on a dying socket
            log.debug("close handshake failed", exc_info=True)
        finally:
            ws.shutdown()  # type: ignore[no-untyped-call]
            app.sock = None

    # -- websocket-client callbacks (I/O thread) ------------------------------------------------
    def _on_message(self, _ws: Any, data: Any) -> None:
        self.frames_received += 1
        self.bytes_received += len(data)
        self._listener.on_frame(data)

    def _on_pong(self, _ws: Any, _data: Any) -> None:
        self._last_pong = time.monotonic()

    def _on_error(self, _ws: Any, error: BaseException) -> None:
        self._close.setdefault("error", error)

    def _on_close(self, _ws: Any, code: Optional[int], reason: Optional[str]) -> None:
        if code is not None:
            self._close["code"] = code
        if reason:
            self._close["reason"] = reason

    def _info(self, *, was_open: bool, opened_at: Optional[float]) -> CloseInfo:
        error = self._close.get("error")
        status = getattr(error, "status_code", None)
        return CloseInfo(
            was_open=was_open,
            code=self._close.get("code"),
            reason=str(self._close.get("reason", "") or getattr(error, "reason", "") or ""),
            error=error,
            rate_limited=(not was_open and status == 429),
            opened_at=opened_at,
            closed_at=time.monotonic(),
        )

    # -- wake pipe ------------------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already signalled (buffer full), or closed
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _close_wake_pipe(self) -> None:
        for s in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()


def proxy_options(proxy: Optional[str]) -> Dict[str, Any]:
    """``run_forever`` keyword arguments for a proxy URL (``http://user:pw@host:port``,
    ``socks5://host:port``...)."""
    if not proxy:
        return {}
    from urllib.parse import urlsplit

    parts = urlsplit(proxy)
    if not parts.hostname:
        raise ValueError(f"invalid proxy URL {proxy!r}")
    scheme = parts.scheme or "http"
    options: Dict[str, Any] = {
        "http_proxy_host": parts.hostname,
        "http_proxy_port": parts.port or (1080 if scheme.startswith("socks") else 8080),
        "proxy_type": scheme if scheme != "https" else "http",
    }
    if parts.username:
        options["http_proxy_auth"] = (parts.username, parts.password or "")
    return options

