"""Record raw Indexer frames and replay them through the client's normal decode → dispatch path.

A recording is a JSON Lines file (gzip-compressed when its name ends in ``.gz``). The first line
is an optional header, every other line is one WebSocket text frame exactly as it arrived, with
the local receive time (``time.time()``)::

    {"dydx_ws_recording": 1, "url": "wss://...", "subscriptions": [["v4_trades", "BTC-USD"]], ...}
    {"received_at": 1717000000.123456, "frame": "{\\"type\\":\\"connected\\",...}"}
    {"received_at": 1717000000.131002, "frame": "{\\"type\\":\\"subscribed\\",...}"}

Writing: :class:`Recorder` (thread-safe ``write(frame, received_at)``, usable as a raw-frame tap)
and :func:`record`, which records a live feed through a client's raw-frame tap
(:meth:`~dydx_ws.DydxWebSocketClient.add_frame_tap`): frames are stored before decoding, exactly
as the server sent them, and the client's reconnect loop keeps a recording going across
disconnects. The format is versioned by the header's ``dydx_ws_recording`` number (1); readers
accept files without a header. A recorder flushes every ``flush_interval`` seconds (0.5; a gzip
sync flush for ``.gz``) while frames arrive, and :func:`record` also on a timer, so a crash (even
``kill -9``) loses well under a second; a file cut mid-line or mid-stream by a crash replays up
to the cut, with a warning.

Replaying: :class:`ReplaySource` reads a recording (or any iterable of :class:`RecordedFrame`),
and :meth:`ReplaySource.play` / :func:`replay` feed every frame to a
:class:`~dydx_ws.DydxWebSocketClient` that was started *offline* (its workers run, its I/O
thread never connects). Each frame goes through the client's public input for that,
:meth:`~dydx_ws.DydxWebSocketClient.feed`: ``decode_message`` → subscription routing →
``Dispatcher`` → worker → local state (order books, markets, subaccounts) → your callbacks,
exactly as live data does, with the recorded ``received_at`` kept on every message. ``speed=1``
keeps the recorded pace, ``2`` doubles it, ``0`` (the default) replays as fast as possible.

Everything runs on the calling thread (the "replay thread" plays the part of the I/O thread:
the one producer of the dispatcher), so ``replay()`` returns once every frame has been
delivered to the callbacks.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from .engine._subscriptions import Key
from .errors import DecodeError, DydxConnectionError, DydxWsError, SubscriptionError
from .events import ErrorEvent
from .protocol._channels import (
    BLOCK_HEIGHT,
    CANDLES,
    MARKETS,
    ORDERBOOK,
    PARENT_SUBACCOUNTS,
    SUBACCOUNTS,
    TRADES,
    Topic,
    find,
    sent_id,
)
from .protocol._decode import DATA_TYPES as _DATA_TYPES
from .protocol._decode import decode_message
from .protocol._messages import Message

if TYPE_CHECKING:
    from .client import DydxWebSocketClient

__all__ = [
    "FORMAT_VERSION",
    "RecordedFrame",
    "Recorder",
    "ReplayResult",
    "ReplaySource",
    "offline_client",
    "open_recording",
    "read_frames",
    "record",
    "replay",
]

log = logging.getLogger("dydx_ws.replay")

FORMAT_VERSION = 1
OFFLINE_URL = "ws://replay.invalid/v4/ws"
PathLike = Union[str, "os.PathLike[str]"]
ProgressFn = Callable[[int, Optional[int]], None]  # (frames done, total or None)
MessageCallback = Callable[[Message], Any]


@dataclass(frozen=True)
class RecordedFrame:
    """One recorded WebSocket text frame and its local receive time (seconds since the epoch)."""

    received_at: float
    data: str


def open_recording(path: PathLike, mode: str = "rt") -> IO[str]:
    """Open a recording for text reading (``"rt"``) or writing (``"wt"``/``"at"``), through gzip
    when the name ends in ``.gz``."""
    if str(path).endswith(".gz"):
        binary = gzip.GzipFile(path, mode.replace("t", "") + "b")
        return io.TextIOWrapper(binary, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _text(data: Any) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data).decode("utf-8", errors="replace")
    if isinstance(data, str):
        return data
    return json.dumps(data, separators=(",", ":"))


class Recorder:
    """Appends frames to a recording. ``write`` is thread-safe and cheap (one buffered line),
    so a recorder can be used directly as a raw-frame tap: ``recorder.write(frame, received_at)``.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        url: Optional[str] = None,
        subscriptions: Sequence[Key] = (),
        header: bool = True,
        flush_interval: float = 0.5,
    ) -> None:
        self.path = str(path)
        self._file: Optional[IO[str]] = open_recording(path, "wt")
        self._lock = threading.Lock()
        self.frames = 0
        self.flush_interval = flush_interval
        self._flushed_at = time.monotonic()
        if header:
            meta = {
                "dydx_ws_recording": FORMAT_VERSION,
                "url": url,
                "subscriptions": [list(k) for k in subscriptions],
                "started_at": time.time(),
            }
            self._file.write(json.dumps(meta, separators=(",", ":")) + "\n")

    def write(self, data: Any, received_at: Optional[float] = None) -> None:
        """Store one raw frame (``str``/``bytes``; a parsed ``dict`` is re-serialised)."""
        at = time.time() if received_at is None else float(received_at)
        line = json.dumps({"received_at": at, "frame": _text(data)}, separators=(",", ":"))
        with self._lock:
            if self._file is None:
                raise ValueError("the recorder is closed")
            self._file.write(line + "\n")
            self.frames += 1
            if time.monotonic() - self._flushed_at >= self.flush_interval:
                self._flush_locked()

    __call__ = write

    def flush(self) -> None:
        """Push everything written so far to the operating system (a gzip sync flush: the file
        decompresses up to here even if the process dies next)."""
        with self._lock:
            self._flush_locked()

    def flush_if_due(self) -> None:
        """:meth:`flush` if ``flush_interval`` has passed since the last one (for a timer while
        no frames arrive)."""
        with self._lock:
            if time.monotonic() - self._flushed_at >= self.flush_interval:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._file is not None:
            self._file.flush()  # TextIOWrapper -> GzipFile.flush(Z_SYNC_FLUSH) -> the file
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        with self._lock:
            f, self._file = self._file, None
        if f is not None:
            f.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


def _parse_line(
    line: str, number: int, path: str
) -> Optional[Union[RecordedFrame, Dict[str, Any]]]:
    line = line.strip()
    if not line:
        return None
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}:{number}: expected a JSON object")
    if "dydx_ws_recording" in obj:
        return obj
    try:
        frame = obj["frame"]
        at = float(obj["received_at"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}:{number}: expected 'received_at' and 'frame' fields") from None
    return RecordedFrame(at, _text(frame))


def _gzip_lines(path: PathLike) -> Iterator[str]:
    """The text lines of a gzip file (one member or several), tolerating a file cut by a crash:
    the lines decompressed before the cut are returned, with a warning."""
    with open(path, "rb") as f:
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = b""
        started = False
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            while chunk:
                started = True
                try:
                    pending += inflate.decompress(chunk)
                except zlib.error as exc:
                    raise ValueError(f"{path}: not a gzip recording ({exc})") from None
                chunk = b""
                if inflate.eof:  # end of a member: another may follow
                    chunk = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    started = bool(chunk)
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace") + "\n"
        pending += inflate.flush()
        if started:
            log.warning(
                "%s: the compressed stream is cut (the recorder did not close it): "
                "replaying up to the cut",
                path,
            )
        if pending:
            yield pending.decode("utf-8", errors="replace")


def _lines(path: PathLike) -> Iterator[str]:
    if str(path).endswith(".gz"):
        yield from _gzip_lines(path)
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from f


def _parsed(path: PathLike) -> Iterator[Union[RecordedFrame, Dict[str, Any]]]:
    """The header and frames of a recording; a last line cut mid-way (no newline) by a crash is
    left out with a warning, a malformed line elsewhere raises ``ValueError``."""
    for number, line in enumerate(_lines(path), 1):
        try:
            item = _parse_line(line, number, str(path))
        except ValueError as exc:
            if line.endswith("\n"):
                raise
            log.warning("%s: the last line is cut (%s): replaying up to the cut", path, exc)
            return
        if item is not None:
            yield item


def read_frames(path: PathLike) -> Iterator[RecordedFrame]:
    """Every frame of a recording, in order (the header is skipped). Raises ``ValueError`` with
    the file and line number on a malformed line, ``OSError`` if the file cannot be read; a file
    cut by a crash (mid-line, or a gzip stream never closed) yields the frames before the cut
    and logs a warning."""
    for item in _parsed(path):
        if isinstance(item, RecordedFrame):
            yield item


def _read_header(path: PathLike) -> Dict[str, Any]:
    for item in _parsed(path):
        return item if isinstance(item, dict) else {}
    return {}


@dataclass
class ReplayResult:
    """What a replay did: frames fed, messages routed to subscriptions per channel, decode errors,
    the recorded time span and the wall-clock time it took."""

    frames: int = 0
    messages: int = 0
    per_channel: Dict[str, int] = field(default_factory=dict)
    decode_errors: int = 0
    first_received_at: Optional[float] = None
    last_received_at: Optional[float] = None
    elapsed: float = 0.0
    interrupted: bool = False
    client: Optional[DydxWebSocketClient] = field(default=None, repr=False)

    @property
    def recorded_span(self) -> float:
        """Seconds between the first and the last recorded frame."""
        if self.first_received_at is None or self.last_received_at is None:
            return 0.0
        return self.last_received_at - self.first_received_at


class ReplaySource:
    """A recording to replay: a file path or an iterable of :class:`RecordedFrame`.

    ``speed``: 1.0 keeps the recorded pace, 2.0 is twice as fast, 0 (default) as fast as possible.
    """

    def __init__(
        self, source: Union[PathLike, Iterable[RecordedFrame]], *, speed: float = 0.0
    ) -> None:
        self.speed = _check_speed(speed)
        self.path: Optional[str] = None
        self._frames: Optional[List[RecordedFrame]] = None
        if isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
            if not os.path.exists(self.path):
                raise FileNotFoundError(f"no such recording: {self.path}")
        else:
            self._frames = list(source)

    def __iter__(self) -> Iterator[RecordedFrame]:
        if self._frames is not None:
            return iter(self._frames)
        assert self.path is not None
        return read_frames(self.path)

    def __len__(self) -> int:
        if self._frames is not None:
            return len(self._frames)
        return sum(1 for _ in self)

    @property
    def header(self) -> Dict[str, Any]:
        """The recording's header line (``{}`` if it has none)."""
        return _read_header(self.path) if self.path is not None else {}

    def topics(self) -> List[Key]:
        """The subscriptions of the recording: the header's list, else every channel/id that has a
        ``subscribed`` or data frame, in order of first appearance."""
        listed = self.header.get("subscriptions") or []
        keys: List[Key] = []
        for c, i in listed:
            key = Topic(str(c), _wire_id(str(c), i), False).key
            if key not in keys:
                keys.append(key)
        seen = set(keys)
        for frame in self:
            try:
                obj = json.loads(frame.data)
            except ValueError:
                continue
            if not isinstance(obj, dict) or obj.get("type") not in _DATA_TYPES:
                continue
            channel = obj.get("channel")
            if not isinstance(channel, str):
                continue
            key = Topic(channel, _wire_id(channel, obj.get("id")), False).key
            if key not in seen:
                seen.add(key)
                keys.append(key)
        return keys

    def messages(self) -> Iterator[Message]:
        """Decode every frame (no client, no pacing): the typed messages with their recorded
        ``received_at``; frames that do not decode are skipped (logged)."""
        for frame in self:
            try:
                yield decode_message(frame.data, received_at=frame.received_at)
            except DecodeError as exc:
                log.warning("skipping a frame that does not decode: %s", exc)

    def play(
        self,
        client: DydxWebSocketClient,
        *,
        progress: Optional[ProgressFn] = None,
        stop: Optional[threading.Event] = None,
        total: Optional[int] = None,
        speed: Optional[float] = None,
        drain_timeout: float = 30.0,
    ) -> ReplayResult:
        """Feed every frame to ``client`` (started offline here if it was not started; a client
        that is connected to a network is refused) and wait until its workers have delivered
        them. ``progress(done, total)`` is called every few frames; setting ``stop`` ends early.
        ``speed`` overrides this source's speed for this call.
        """
        speed = self.speed if speed is None else _check_speed(speed)
        start_offline(client)
        result = ReplayResult(client=client)
        feed = _frame_feeder(client, wake=speed > 0)
        started = time.monotonic()
        t0: Optional[float] = None
        last_progress = 0.0
        try:
            for frame in self:
                if stop is not None and stop.is_set():
                    result.interrupted = True
                    break
                if t0 is None:
                    t0 = frame.received_at
                    result.first_received_at = frame.received_at
                if speed > 0:
                    due = started + (frame.received_at - t0) / speed
                    wait = due - time.monotonic()
                    if wait > 0:
                        if stop is not None:
                            if stop.wait(wait):
                                result.interrupted = True
                                break
                        else:
                            time.sleep(wait)
                result.last_received_at = frame.received_at
                result.frames += 1
                kind = feed(frame)
                if kind is None:
                    result.decode_errors += 1
                elif kind[0] in _DATA_TYPES and kind[1]:
                    result.messages += 1
                    result.per_channel[kind[1]] = result.per_channel.get(kind[1], 0) + 1
                if progress is not None:
                    now = time.monotonic()
                    if now - last_progress >= 0.05:
                        last_progress = now
                        progress(result.frames, total)
        finally:
            drain(client, timeout=drain_timeout)
            result.elapsed = time.monotonic() - started
        if progress is not None:
            progress(result.frames, total)
        return result


def _check_speed(speed: Any) -> float:
    if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0 <= speed < 1e308:
        raise ValueError(f"speed must be a number >= 0, got {speed!r}")
    return float(speed)


def _wire_id(channel: str, sid: Any) -> Optional[str]:
    return sent_id(channel, None if sid is None else str(sid))


def start_offline(client: DydxWebSocketClient) -> None:
    """Start ``client``'s workers without its I/O thread (for replays): idempotent; refuses a
    client whose connection is running."""
    if client.state in ("connecting", "connected"):
        raise ValueError("cannot replay into a client that is connected to a network")
    try:
        client.start(connect=False)
    except DydxWsError as exc:  # stopped
        raise ValueError(str(exc)) from None


def _frame_feeder(
    client: DydxWebSocketClient, *, wake: bool
) -> Callable[[RecordedFrame], Optional[Tuple[str, Optional[str]]]]:
    """The function that hands one recorded frame to ``client.feed`` (with its recorded receive
    time) and returns the frame's ``(type, channel)`` (None if it does not decode). ``wake``:
    deliver each frame at once (a paced replay, as the I/O thread does before it waits)."""

    def feed(frame: RecordedFrame) -> Optional[Tuple[str, Optional[str]]]:
        msg = client.feed(frame.data, received_at=frame.received_at, flush=wake)
        return None if msg is None else (msg.type, msg.channel)

    return feed


def _type_and_channel(data: str) -> Tuple[str, Optional[str]]:
    """``(type, channel)`` of a raw frame without decoding its contents ("" if not JSON)."""
    try:
        obj = json.loads(data)
    except ValueError:
        return "", None
    if not isinstance(obj, dict):
        return "", None
    channel = obj.get("channel")
    return str(obj.get("type", "")), channel if isinstance(channel, str) else None


def drain(client: DydxWebSocketClient, timeout: float = 30.0) -> bool:
    """Wait until everything queued for ``client`` has been delivered (``client.drain``)."""
    return client.drain(timeout)


Target = Union["DydxWebSocketClient", MessageCallback, Mapping[str, MessageCallback]]


def replay(
    source: Union[PathLike, Iterable[RecordedFrame], ReplaySource],
    target: Target,
    *,
    speed: Optional[float] = None,
    progress: Optional[ProgressFn] = None,
    stop: Optional[threading.Event] = None,
    workers: int = 1,
) -> ReplayResult:
    """Replay a recording through the client's decode → dispatch → callback path.

    ``target`` is either a :class:`~dydx_ws.DydxWebSocketClient` you created and subscribed
    (not started: it is started offline and left running, so its order books, markets and
    subaccounts can be inspected afterwards — stop it when done), or a callback (every message)
    or a mapping ``channel -> callback``: then a client is made offline, subscribed to every
    topic of the recording, fed, and stopped; ``result.client`` still holds its final state.

    ``speed``: 1 keeps the recorded pace, 2 doubles it, 0 is as fast as possible; None (default)
    uses the speed of a :class:`ReplaySource` passed in, else 0.
    """
    src = source if isinstance(source, ReplaySource) else ReplaySource(source)
    from .client import DydxWebSocketClient

    options: Dict[str, Any] = dict(
        progress=progress, stop=stop, total=_total(src, progress), speed=speed
    )
    if isinstance(target, DydxWebSocketClient):
        return src.play(target, **options)
    client = offline_client(workers)
    try:
        subscribe_topics(client, src.topics(), target)
        return src.play(client, **options)
    finally:
        client.stop()


def offline_client(workers: int = 1) -> DydxWebSocketClient:
    """A client for replays: it never connects (its URL does not resolve) and runs no drift
    checks; :meth:`ReplaySource.play` starts its workers."""
    from .client import DydxWebSocketClient

    return DydxWebSocketClient(url=OFFLINE_URL, workers=workers, check_interval=None)


def _total(src: ReplaySource, progress: Optional[ProgressFn]) -> Optional[int]:
    return len(src) if progress is not None else None


def subscribe_topics(
    client: DydxWebSocketClient,
    topics: Iterable[Key],
    callbacks: Union[MessageCallback, Mapping[str, MessageCallback], None] = None,
) -> None:
    """Subscribe ``client`` to recorded topics (``(channel, id)`` keys) through its public
    ``subscribe_*`` methods, with one callback for all or one per channel."""
    for channel, sid in topics:
        if callable(callbacks):
            cb: Optional[MessageCallback] = callbacks
        elif callbacks is not None:
            cb = callbacks.get(channel)
        else:
            cb = None
        subscribe_key(client, channel, sid, cb)


def subscribe_key(
    client: DydxWebSocketClient,
    channel: str,
    sid: Optional[str],
    callback: Optional[MessageCallback],
) -> Any:
    """Subscribe to one ``(channel, id)`` key with the matching ``subscribe_*`` method (its
    id's parts, parsed by the channel table, are the method's leading arguments)."""
    spec = find(channel)
    if spec is None:
        raise ValueError(f"unknown channel {channel!r}")
    params: Dict[str, Any] = {}
    if spec.has_id:
        if sid is None:
            raise ValueError(f"{channel} needs an id")
        params = spec.parse_id(sid)
    return getattr(client, _SUBSCRIBE[spec.name])(*params.values(), callback)


_SUBSCRIBE: Dict[str, str] = {  # channel -> the client's method for it
    TRADES: "subscribe_trades",
    ORDERBOOK: "subscribe_orderbook",
    CANDLES: "subscribe_candles",
    MARKETS: "subscribe_markets",
    SUBACCOUNTS: "subscribe_subaccount",
    PARENT_SUBACCOUNTS: "subscribe_parent_subaccount",
    BLOCK_HEIGHT: "subscribe_block_height",
}


def record(
    url: str,
    topics: Sequence[Key],
    out: Union[PathLike, Recorder],
    *,
    duration: Optional[float] = None,
    count: Optional[int] = None,
    stop: Optional[threading.Event] = None,
    connect_timeout: float = 10.0,
    sslopt: Optional[Dict[str, Any]] = None,
    on_frame: Optional[Callable[[RecordedFrame], None]] = None,
    on_progress: Optional[Callable[[str], None]] = None,
) -> int:
    """Record a live feed: connect to ``url``, subscribe to ``topics`` (``(channel, id)`` as on
    the wire; ``id`` None for markets and block height) and store every frame until ``duration``
    seconds have passed, ``count`` channel frames (``subscribed`` and data) were stored, or
    ``stop`` is set. Returns the number of frames written.

    The frames are taken from a :class:`~dydx_ws.DydxWebSocketClient` through its raw-frame tap,
    before decoding, so they are stored exactly as the server sent them; the client's reconnect
    loop keeps the recording going across disconnects (a reconnect shows up in the file as a new
    ``connected`` frame followed by fresh ``subscribed`` snapshots, which a replay applies as the
    live client did). ``on_frame(frame)`` is called on the client's I/O thread after each write;
    ``on_progress(text)`` hears about the connection attempts (see :func:`connect_or_raise`).
    Raises :class:`~dydx_ws.DydxConnectionError` (naming the last connection error) if no
    connection is made within ``connect_timeout`` seconds (an output file made here is then
    removed), and :class:`~dydx_ws.SubscriptionError` with the server's text as soon as the
    server refuses one of ``topics`` (the file keeps what was recorded until then).
    """
    from .client import DydxWebSocketClient

    owned = not isinstance(out, Recorder)
    recorder = out if isinstance(out, Recorder) else Recorder(out, url=url, subscriptions=topics)
    client = DydxWebSocketClient(
        url=url, workers=1, sslopt=sslopt, connect_timeout=connect_timeout, check_interval=None
    )
    tap = _RecordingTap(recorder, count, on_frame)
    client.add_frame_tap(tap)
    client.on("error", tap.on_error)
    connected = False
    try:
        subs = [subscribe_key(client, channel, sid, None) for channel, sid in topics]
        connected = connect_or_raise(client, connect_timeout, on_progress)
        deadline = None if duration is None else time.monotonic() + duration
        wait_until(tap.done, deadline, stop, tick=recorder.flush_if_due)
        for sub in subs:  # a refusal that raced the end of the recording
            if sub.error is not None and tap.error is None:
                tap.error = sub.error
    finally:
        client.stop()  # joins the I/O thread: the tap is not called after this
        if owned:
            recorder.close()
            if not connected:
                _remove_quietly(recorder.path)
        else:
            recorder.flush()
    if tap.error is not None:
        raise tap.error
    return tap.written


class _RecordingTap:
    """The frame tap of :func:`record` (I/O thread): writes each frame and counts channel frames;
    once ``count`` of them are stored it sets ``done`` and ignores the frames after."""

    def __init__(
        self,
        recorder: Recorder,
        count: Optional[int],
        on_frame: Optional[Callable[[RecordedFrame], None]],
    ) -> None:
        self.recorder = recorder
        self.count = count
        self.on_frame = on_frame
        self.done = threading.Event()
        self.error: Optional[Exception] = None  # a failed write or a refusal ends it
        self.written = 0
        self.channel_frames = 0

    def on_error(self, event: ErrorEvent) -> None:
        """A subscription the server refused ends the recording (worker thread)."""
        if event.kind == "subscription" and isinstance(event.exception, SubscriptionError):
            if self.error is None:
                self.error = event.exception
            self.done.set()

    def __call__(self, data: Any, received_at: float) -> None:
        if self.done.is_set():
            return
        frame = RecordedFrame(received_at, _text(data))
        try:
            self.recorder.write(frame.data, frame.received_at)
        except (OSError, ValueError) as exc:  # disk full, recorder closed: a tap must not raise
            self.error = exc
            self.done.set()
            return
        self.written += 1
        if self.on_frame is not None:
            self.on_frame(frame)
        if self.count is not None and _type_and_channel(frame.data)[0] in _DATA_TYPES:
            self.channel_frames += 1
            if self.channel_frames >= self.count:
                self.done.set()


def connect_or_raise(
    client: DydxWebSocketClient,
    timeout: float,
    on_progress: Optional[Callable[[str], None]] = None,
) -> bool:
    """Start ``client`` and wait up to ``timeout`` seconds for its connection; True once
    connected, else :class:`~dydx_ws.DydxConnectionError` naming the URL and the last
    connection error the client reported (one line: an HTTP error page is not quoted).
    ``on_progress(text)`` hears what happens meanwhile: "connecting to ..." when the first
    second passes without a connection, and every failed attempt with its reason."""
    url = client.network.ws_url
    reported = threading.Event()

    def on_error(event: ErrorEvent) -> None:
        if event.kind == "connection" and on_progress is not None:
            reported.set()
            on_progress(f"connecting to {url}: {event.message}")

    remove = client.on("error", on_error)
    deadline = time.monotonic() + timeout
    try:
        client.start()
        if client.wait_connected(min(1.0, timeout)):
            return True
        if on_progress is not None and client.state == "connecting" and not reported.is_set():
            on_progress(f"connecting to {url} ...")
        if client.wait_connected(max(0.0, deadline - time.monotonic())):
            return True
    finally:
        remove()
    last = client.stats()["last_connection_error"]
    reason = f" ({last})" if last else ""
    raise DydxConnectionError(f"cannot connect to {url} within {timeout:g} s{reason}")


def wait_until(
    done: threading.Event,
    deadline: Optional[float],
    stop: Optional[threading.Event] = None,
    tick: Optional[Callable[[], None]] = None,
    period: float = 0.25,
) -> None:
    """Block until ``done`` or ``stop`` is set or the ``time.monotonic()`` ``deadline`` passes,
    calling ``tick()`` every ``period`` seconds; waits in short slices so that Ctrl-C
    (``KeyboardInterrupt``) is raised promptly in the main thread."""
    while not done.is_set() and not (stop is not None and stop.is_set()):
        remaining = period if deadline is None else min(period, deadline - time.monotonic())
        if remaining <= 0 or done.wait(remaining):
            return
        if tick is not None:
            tick()


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
