"""The I/O thread: one WebSocket at a time, kept alive by our own reconnect loop.

Architecture::

    thread "dydx-ws-io":
      loop until stop():
        open_socket()  (_opening.py)                     # TCP (+ proxy) + TLS, one deadline
        WebSocketApp.run_forever(socket=HandshakeSocket,   # the HTTP upgrade, bounded by the
                                 dispatcher=_HandOff)      # same deadline; returns once open
        ws.sock = WriteOnlySocket(raw)                     # websocket-client only writes now
        serve(): select([socket, wake-pipe], timeout)      # every byte of I/O happens here
          - readable socket   -> FrameReader.read() (_frame_reader.py): frames sliced from our
                                 own 64 KiB read buffer, RFC 6455 checks, fragments joined
                                 -> listener.on_frame(data); ping -> pong; close -> echoed
                                 (nothing blocks outside select, so a stall anywhere, even
                                 inside a frame, ends at the heartbeat deadline)
          - due sends         -> paced: <= 2 subscribes per (channel, id) per 2 s
          - heartbeat         -> a ping frame every ping_interval; no pong within pong_timeout
                                 means a dead or half-open link: drop it and reconnect
          - stop() / send()   -> the wake-pipe interrupts select at once
        shut down and close the attempt's socket, whatever happened
        sleep(backoff) interruptibly; >= 30 s after an HTTP 429, >= Retry-After (capped)

Why a hand-off dispatcher: given a custom ``dispatcher=`` object, ``run_forever`` performs the
handshake, registers its frame reader with that object and returns. We never call that reader:
frames are parsed by :class:`FrameReader`, so heartbeat, pacing, stop and reading share one
thread, websocket-client's own ping thread and fixed-sleep ``reconnect=`` are never used, and
the server's pings are answered even while user callbacks block on the worker threads.
websocket-client still performs the upgrade and writes (masks) every outgoing frame; the
internals this relies on are listed in ``_frame_reader.py``. The listener's callbacks run on
this thread and must be quick.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Hashable, List, Optional, Protocol, Tuple

import websocket

from ._frame_reader import FrameReader, ProtocolViolation, WriteOnlySocket, parse_close
from ._opening import HandshakeError, HandshakeSocket, check_upgrade, open_socket
from ._options import ConnectionOptions

__all__ = ["CloseInfo", "Connection", "ConnectionListener"]

log = logging.getLogger("dydx_ws.transport._connection")


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

# The server allows 2 subscribes per channel+id in a fixed 1 s window that starts when it reads
# the first: 2 s leaves a second of margin for frames it reads late (a busy server, a slow link).
SUBSCRIBE_WINDOW = 2.0
SUBSCRIBES_PER_WINDOW = 2
_MAX_WAIT = 1.0  # the serve loop wakes at least this often
_BURST = 64  # frames read back to back before sends, pings and ticks are looked at again
RETRY_AFTER_CAP = 300.0  # seconds: the longest Retry-After honoured
_CLOSE_WAIT = 1.0  # seconds the close handshake may take on stop()


@dataclass
class CloseInfo:
    """How a connection attempt or session ended."""

    was_open: bool
    code: Optional[int] = None
    reason: str = ""
    error: Optional[BaseException] = None
    rate_limited: bool = False
    retry_after: Optional[float] = None  # seconds, from a refused handshake's Retry-After
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


class _Unstarted:
    """The listener of a connection that was never started: nothing reports to it."""

    def on_open(self) -> None: ...

    def on_frame(self, data: Any) -> object: ...

    def on_idle(self) -> None: ...

    def on_close(self, info: CloseInfo) -> None: ...

    def on_retry(self, delay: float, attempt: int, info: CloseInfo) -> None: ...

    def on_give_up(self, info: CloseInfo) -> None: ...

    def on_tick(self, now: float) -> None: ...


class _HandOff:
    """The ``dispatcher=`` object websocket-client registers its frame reader with (we run the
    loop ourselves); sends (websocket-client 1.9) go straight to ``ws.sock``, which writes all."""

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


@dataclass
class _Outgoing:
    text: str
    key: Hashable
    is_subscribe: bool
    not_before: float = 0.0
    on_sent: Optional[Callable[[], None]] = None


class Connection:
    """Owns the I/O thread and the socket; everything else talks to it through ``send``."""

    def __init__(self, options: ConnectionOptions) -> None:
        self._opt = options
        self._listener: ConnectionListener = _Unstarted()  # the real one is given to start()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._outgoing: Deque[_Outgoing] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._pacer = _SendPacer()
        self._backoff = options.reconnect.backoff()
        self._raw: Optional[socket.socket] = None  # the current attempt's socket
        self._close_by = 0.0  # when stop()'s close handshake gives up
        self._close: Dict[str, Any] = {}
        self._last_pong = 0.0
        self._ping_sent = 0.0
        self.connected = threading.Event()
        self.frames_received = 0
        self.bytes_received = 0

    # -- lifecycle (any thread) ----------------------------------------------------------------
    def start(self, listener: ConnectionListener) -> None:
        """Start the I/O thread, reporting to ``listener`` (idempotent). The listener is given
        here, not at construction: it is usually the object that sends through this
        connection."""
        if self._thread is not None:
            return
        self._listener = listener
        self._thread = threading.Thread(target=self._run, name=self._opt.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Close the socket (code 1000) and join the I/O thread; True if it has exited.

        Every wait of the I/O thread also watches the wake-pipe, so it exits at once in any state
        (connecting, mid-handshake, mid-frame); the close handshake gets at most half of
        ``timeout`` (and at most 1 s). Should the thread still be alive near the end, the socket
        is shut down under it (a blocked send returns) before the final join."""
        deadline = time.monotonic() + timeout
        self._close_by = time.monotonic() + min(_CLOSE_WAIT, timeout / 2)
        self._stop.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout * 0.8))
            if thread.is_alive():
                self._abort_socket()
                thread.join(max(0.0, deadline - time.monotonic()))
            alive = thread.is_alive()
        else:
            alive = False
        if not alive:
            self._close_wake_pipe()
        return not alive

    def request_stop(self) -> None:
        """Ask the I/O thread to close the socket (code 1000) and exit, without waiting for it
        (any thread, even its own); :meth:`stop` joins it later."""
        self._close_by = time.monotonic() + _CLOSE_WAIT
        self._stop.set()
        self._wake()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def send(
        self,
        text: str,
        *,
        key: Hashable = None,
        subscribe: bool = False,
        delay: float = 0.0,
        on_sent: Optional[Callable[[], None]] = None,
    ) -> None:
        """Queue a text frame; subscribes are paced per key. Sent only while connected (frames
        queued while disconnected are dropped at reconnect: the listener re-sends state).
        ``on_sent`` runs on the I/O thread once the frame is written.

        An unsubscribe replaces every frame of its key still queued: the key ends unsubscribed
        either way, and a subscribe/unsubscribe churn costs no subscribes the pacer would hold
        back (or the server would rate-limit)."""
        item = _Outgoing(text, key, subscribe, time.monotonic() + delay if delay else 0.0, on_sent)
        with self._lock:
            if not subscribe and key is not None and self._outgoing:
                self._outgoing = deque(o for o in self._outgoing if o.key != key)
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
        """Shut the current socket down from any thread: a read or send blocked on it returns
        at once (the loop then reconnects, or exits when stopping)."""
        raw = self._raw
        if raw is not None:
            with contextlib.suppress(OSError):  # already closed is fine
                raw.shutdown(socket.SHUT_RDWR)

    # -- I/O thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self._backoff
        try:
            gate = self._opt.dial_gate
            while not self._stop.is_set():
                if gate is not None and not gate.wait_turn(self._stop):
                    break
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
                if info.retry_after is not None:  # the server asked for longer: honoured
                    delay = max(delay, min(info.retry_after, RETRY_AFTER_CAP))
                if gate is not None and info.rate_limited:  # the penalty is per IP
                    gate.hold_until(time.monotonic() + delay)
                self._listener.on_retry(delay, backoff.attempts, info)
                if self._stop.wait(delay):
                    break
        except BaseException:  # pragma: no cover - a bug here must be loud, not a silent death
            log.exception("the I/O thread crashed")
            raise
        finally:
            self.connected.clear()

    def _session(self) -> CloseInfo:
        """One connect attempt and, if it opens, serve it until it closes. Whatever happens,
        the socket this attempt opened is shut down and closed before it returns."""
        self._close = {}
        with self._lock:
            self._outgoing.clear()  # anything queued for a previous socket is stale
        self._pacer.reset()
        deadline = time.monotonic() + self._opt.connect_timeout
        try:
            raw = open_socket(
                self._opt.url,
                deadline=deadline,
                sslopt=self._opt.sslopt,
                proxy=self._opt.proxy,
                wake=self._wake_r,
                interrupted=self._stop.is_set,
            )
        except Exception as exc:
            self._close["error"] = exc
            return self._info(was_open=False, opened_at=None)
        self._raw = raw
        try:
            try:
                ws = self._upgrade(raw, deadline)
            except Exception as exc:
                self._close.setdefault("error", exc)
                return self._info(was_open=False, opened_at=None)
            opened_at = time.monotonic()
            self._backoff.connected()  # stability (and the backoff reset) counts from here
            self.connected.set()
            self._listener.on_open()
            try:
                self._serve(ws, raw)
            except Exception as exc:
                self._close.setdefault("error", exc)
            finally:
                self.connected.clear()
            return self._info(was_open=True, opened_at=opened_at)
        finally:
            self._raw = None
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)
            raw.close()

    def _upgrade(self, raw: socket.socket, deadline: float) -> websocket.WebSocket:
        """The HTTP upgrade on ``raw`` (websocket-client's, through a :class:`HandshakeSocket`
        that bounds it); the 101 response is then checked for what the client never offered."""
        handoff = _HandOff()
        app = websocket.WebSocketApp(
            self._opt.url,
            header=[f"{k}: {v}" for k, v in (self._opt.headers or {}).items()],
            on_error=self._on_error,
            socket=HandshakeSocket(  # type: ignore[arg-type]  # a socket for websocket-client
                raw,
                deadline=deadline,
                max_size=self._opt.max_handshake_size,
                wake=self._wake_r,
                interrupted=self._stop.is_set,
            ),
        )
        app.run_forever(
            dispatcher=handoff,
            skip_utf8_validation=True,  # json.loads rejects invalid UTF-8 anyway
            reconnect=0,
            ping_interval=0,
        )
        ws = app.sock
        if handoff.read_callback is None or ws is None or ws.handshake_response is None:
            raise self._close.pop("error", None) or HandshakeError("the handshake failed")
        check_upgrade(ws.handshake_response.headers)
        raw.settimeout(min(self._opt.connect_timeout, self._opt.pong_timeout))  # sends, TLS
        return ws

    def _serve(self, ws: websocket.WebSocket, raw: socket.socket) -> None:
        """Read every frame here, from the buffer, without ever blocking outside ``select``
        (whose wait ends at the next ping or pong deadline): a stall anywhere, even inside a
        frame, ends in ping_interval + pong_timeout, and stop() wakes it at once."""
        probe = selectors.DefaultSelector()  # "readable right now?" for frames cut by a read
        probe.register(raw, selectors.EVENT_READ)
        reader = FrameReader(
            raw,
            lambda: bool(probe.select(0)),
            self._opt.max_message_size,
            fast_frames=self._opt.fast_frames,
        )
        ws.sock = WriteOnlySocket(raw)  # type: ignore[assignment]  # it writes; the reader reads
        buffered = reader.buffered
        on_message = self._on_message
        on_control = functools.partial(self._on_control, ws)
        baton = self._opt.io_baton or contextlib.nullcontext()  # a pool's: one reads at a time
        sel = selectors.DefaultSelector()
        sel.register(raw, selectors.EVENT_READ, "socket")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._last_pong = self._ping_sent = 0.0
        next_ping = time.monotonic() + self._opt.ping_interval
        error: Optional[BaseException] = None
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
                # Frames already buffered are read back to back; the housekeeping above
                # (sends, pings, ticks) runs again at least every _BURST frames.
                if readable:
                    with baton:
                        closed = reader.read(on_message, on_control, _BURST)
                    if closed:
                        return  # the server closed: code and reason are recorded
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._teardown(ws, reader, raw, error)
            sel.close()
            probe.close()

    def _on_control(self, ws: websocket.WebSocket, opcode: int, data: bytes) -> bool:
        """A ping, pong or close from the server; True when the server closed."""
        if opcode == 0x9:  # ping
            ws.pong(data)
        elif opcode == 0xA:  # pong
            self._last_pong = time.monotonic()
        elif opcode == 0x8:
            code, reason = parse_close(data)
            self._on_close(None, code, reason)
            with contextlib.suppress(Exception):  # the peer may be gone already
                ws.send_close(code or websocket.STATUS_NORMAL)  # echo it (RFC 6455 5.5.1)
            return True
        return False

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
            if item.key in blocked:  # behind an earlier frame of its key, which sets the wait
                deferred.append(item)
                continue
            if due > now:
                deferred.append(item)
                blocked.add(item.key)
                wait = min(wait, due - now)
                continue
            ws.send(item.text)
            if item.is_subscribe:
                self._pacer.record(item.key, now)
            if item.on_sent is not None:
                item.on_sent()
        if deferred:
            with self._lock:
                deferred.extend(self._outgoing)
                self._outgoing = deferred
        return wait

    def _teardown(
        self,
        ws: websocket.WebSocket,
        reader: FrameReader,
        raw: socket.socket,
        error: Optional[BaseException],
    ) -> None:
        """Say why the link ends (close 1002/1009 on a violation; 1000 and a bounded wait for
        the server's close on stop()); the caller then shuts the socket down in any case."""
        try:
            if isinstance(error, ProtocolViolation):
                ws.send_close(error.code, str(error)[:120].encode())
            elif error is None and self._stop.is_set() and ws.connected:
                ws.send_close(websocket.STATUS_NORMAL)
                self._await_close(reader, raw, self._close_by)
        except Exception:  # best effort on a dying socket
            log.debug("close handshake failed", exc_info=True)

    @staticmethod
    def _await_close(reader: FrameReader, raw: socket.socket, until: float) -> None:
        """Read (and discard) frames until the server's close frame, the end of the stream or
        ``until``."""
        with selectors.DefaultSelector() as sel:
            sel.register(raw, selectors.EVENT_READ)
            while True:
                frame = reader.next_frame()
                if frame is not None:
                    if frame[0] == 0x8:
                        return
                    continue
                remaining = until - time.monotonic()
                if not reader.need or remaining <= 0:
                    return
                if sel.select(remaining) and not reader.fill():
                    return

    # -- websocket-client callbacks (I/O thread) ------------------------------------------------
    def _on_message(self, data: bytes) -> None:
        self.frames_received += 1
        self.bytes_received += len(data)
        self._listener.on_frame(data)

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
            retry_after=getattr(error, "retry_after", None),
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
