"""The sink mechanism: every received frame, off the I/O thread, to each sink on its own thread.

Architecture::

    I/O thread --offer(raw, received_at, connection)--> bounded deque (per sink)
                                                           | batches of up to batch_size
                                                           v
    thread "dydx-ws-sink-<name>": parse envelope -> Sink.write(batch), jittered retries

- The I/O thread only appends to a bounded deque under a short lock (no parsing, no I/O), so a
  slow, blocked or dead sink never slows the callbacks or the heartbeat.
- Overflow (``"drop_oldest"`` by default, or ``"drop_newest"``): drops are counted
  (``stats()["dropped"]``) and reported as an ``error`` event of kind ``"sink"``; the sink is told
  (:meth:`Sink.on_gap`) so it can mark what it writes as incomplete.
- A batch whose ``write`` raises is retried after a jittered exponential delay, ``max_retries``
  times, then dropped (counted as ``failed``, reported, :meth:`Sink.on_gap`).
- ``stop(timeout)`` writes what is queued (within the time left), then calls :meth:`Sink.close`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..protocol._json import loads
from ..protocol._messages import Message

__all__ = ["ClientContext", "Sink", "SinkFrame", "stop_sinks"]

log = logging.getLogger("dydx_ws.sinks")

Key = Tuple[str, Optional[str]]
_Item = Tuple[Any, float, Optional[str], Optional[Message]]
_UNPARSED = object()
OVERFLOW_POLICIES = ("drop_oldest", "drop_newest")
_IDLE_WAIT = 0.5


class SinkFrame:
    """One received frame as a sink sees it: the raw text exactly as the server sent it, its
    local receive time (``time.time()``), the connection id, and the envelope fields (``type``,
    ``channel``, ``id``; ``None`` when absent). On a client these come from the message the I/O
    side already decoded (``message``, shared with the callbacks: read it, never change it), so
    the sink's thread parses nothing; ``obj`` (the frame's JSON object) is parsed on first use,
    on the sink's thread."""

    __slots__ = ("_obj", "channel", "connection", "id", "message", "raw", "received_at", "type")

    def __init__(
        self,
        raw: str,
        received_at: float,
        connection: Optional[str],
        type: str = "",
        channel: Optional[str] = None,
        id: Optional[str] = None,
        obj: Optional[Dict[str, Any]] = None,
        message: Optional[Message] = None,
    ) -> None:
        self.raw = raw
        self.received_at = received_at
        self.connection = connection
        self.type = type
        self.channel = channel
        self.id = id
        self.message = message
        self._obj: Any = obj if obj is not None else _UNPARSED

    @property
    def obj(self) -> Optional[Dict[str, Any]]:
        """The parsed frame (None if it is not a JSON object)."""
        if self._obj is _UNPARSED:
            self._obj = _parse(self.raw)
        return self._obj  # type: ignore[no-any-return]

    @property
    def key(self) -> Key:
        """``(channel, id)`` as the client keys subscriptions (the frame's own id: None for
        markets, ``"v4_block_height"`` for block height)."""
        return (self.channel or "", self.id)

    @property
    def is_data(self) -> bool:
        """A ``subscribed`` snapshot or channel data (not a control frame)."""
        return self.type in ("subscribed", "channel_data", "channel_batch_data") and bool(
            self.channel
        )

    def __repr__(self) -> str:
        return f"<SinkFrame {self.type} {self.channel}/{self.id} at {self.received_at}>"


@dataclass
class ClientContext:
    """What the client hands a sink it is attached to: the ingest's order book uncross policy
    (shadow state must match it), a way to ask for a fresh snapshot of a subscription, and the
    error reporter (``error`` events of kind ``"sink"``)."""

    uncross: str = "message_id"
    resync: Callable[[Key], object] = lambda key: None
    report: Callable[[str], None] = lambda text: None


class Sink:
    """Base of every sink. Subclasses implement :meth:`write` (and optionally :meth:`open`,
    :meth:`close`, :meth:`on_gap`, :meth:`sink_stats`); the queueing, batching, retries,
    overflow, statistics and thread are handled here.

    Options: ``queue_size`` frames pending before ``overflow`` applies; ``batch_size`` frames
    per :meth:`write` at most; ``flush_interval`` seconds a partial batch may wait;
    ``max_retries`` attempts after a failed write (then the batch is dropped); ``retry_delay`` /
    ``retry_max_delay`` bound the jittered exponential back-off.
    """

    name = "sink"

    def __init__(
        self,
        *,
        queue_size: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        overflow: str = "drop_oldest",
        max_retries: int = 8,
        retry_delay: float = 0.05,
        retry_max_delay: float = 2.0,
        name: Optional[str] = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        if flush_interval < 0 or max_retries < 0 or retry_delay < 0 or retry_max_delay < 0:
            raise ValueError("flush_interval, max_retries and retry delays must be >= 0")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}")
        if name is not None:
            self.name = name
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.overflow = overflow
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self.context = ClientContext()
        self._queue: Deque[_Item] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._waiting = False
        self._stopping = False
        self._stop_event = threading.Event()
        self._deadline = float("inf")
        self._thread: Optional[threading.Thread] = None
        self._attached = False
        self._lost_since_report = 0
        self._last_report = 0.0
        self._gap_flagged = 0
        self._counts: Dict[str, int] = dict.fromkeys(
            ("received", "written", "batches", "dropped", "failed", "retries", "errors"), 0
        )
        self.last_error: Optional[str] = None

    # -- what subclasses implement --------------------------------------------------------------
    def open(self) -> None:
        """Called once on the sink's thread before the first batch."""

    def write(self, batch: List[SinkFrame]) -> None:
        """Store one batch, in order. Raise to have it retried."""
        raise NotImplementedError

    def on_gap(self, unseen: bool) -> None:
        """Frames were lost: ``unseen`` True if they never reached :meth:`write` (overflow),
        False if a batch given to :meth:`write` could not be stored (retries exhausted)."""

    def close(self) -> None:
        """Called once on the sink's thread after the last batch (also after failures)."""

    def sink_stats(self) -> Dict[str, Any]:
        """Figures specific to this kind of sink, merged into :meth:`stats`."""
        return {}

    # -- the client's side --------------------------------------------------------------------
    def attach(self, context: ClientContext) -> None:
        """Bind to a client (once) and start the thread ``dydx-ws-sink-<name>``."""
        with self._cond:
            if self._attached:
                raise ValueError(f"sink {self.name!r} is already attached to a client")
            self._attached = True
        self.context = context
        self._thread = threading.Thread(target=self._run, name=f"dydx-ws-sink-{self.name}")
        self._thread.daemon = True  # a write blocked in a driver must not keep Python alive
        self._thread.start()

    def offer(
        self,
        raw: Any,
        received_at: float,
        connection: Optional[str] = None,
        message: Optional[Message] = None,
    ) -> None:
        """Queue one frame (I/O thread): O(1), never blocks on the sink. ``message``: the frame
        as the I/O side decoded it (None: not decodable, or not known; the sink's thread then
        parses the envelope itself)."""
        with self._cond:
            if self._stopping:
                return
            self._counts["received"] += 1
            if len(self._queue) < self.queue_size:
                self._queue.append((raw, received_at, connection, message))
                n = len(self._queue)
                if self._waiting and (n == 1 or n >= self.batch_size):
                    self._cond.notify()  # first frame: start the flush clock; full: write now
                return
            self._counts["dropped"] += 1
            self._lost_since_report += 1
            if self.overflow == "drop_oldest":
                self._queue.popleft()
                self._queue.append((raw, received_at, connection, message))
        self._report_losses()  # here too: the sink's own thread may be the one that is stuck

    def request_stop(self, timeout: float) -> None:
        """Stop taking frames; write what is queued within ``timeout`` seconds, then close."""
        with self._cond:
            if not self._stopping:
                self._stopping = True
                self._deadline = time.monotonic() + max(0.0, timeout)
            self._cond.notify()
        self._stop_event.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Write what is queued within ``timeout`` seconds, close, join. Idempotent; True if the
        thread exited."""
        self.request_stop(timeout)
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(max(0.0, timeout))
        if thread.is_alive():
            log.warning("sink %s did not finish within %.1f s", self.name, timeout)
            return False
        return True

    def stats(self) -> Dict[str, Any]:
        """Frames received/written/dropped/failed, batches, retries, queue depth, last error."""
        with self._cond:
            figures: Dict[str, Any] = dict(self._counts)
            figures["queue_depth"] = len(self._queue)
        figures["name"] = self.name
        figures["last_error"] = self.last_error
        figures["alive"] = self._thread is not None and self._thread.is_alive()
        figures.update(self.sink_stats())
        return figures

    # -- the sink's thread --------------------------------------------------------------------
    def _take(self) -> Optional[List[_Item]]:
        """The next batch (waiting up to ``flush_interval`` for a full one); None once stopping
        and empty (or past the stop deadline)."""
        with self._cond:
            waited_since = time.monotonic()
            while True:
                n = len(self._queue)
                if n == 0:
                    waited_since = time.monotonic()  # a partial batch waits from its first frame
                if self._stopping:
                    if n == 0 or time.monotonic() >= self._deadline:
                        return None
                    break
                if n >= self.batch_size:
                    break
                if n and time.monotonic() - waited_since >= self.flush_interval:
                    break
                self._waiting = True
                self._cond.wait(self.flush_interval if n else _IDLE_WAIT)
                self._waiting = False
            count = min(n, self.batch_size)
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        try:
            self._call_with_retries(self.open, None)
        except Exception as exc:
            self._note_error(f"could not open: {exc!r}")
        try:
            while True:
                self._report_losses()
                items = self._take()
                if items is None:
                    break
                batch = [_frame(*item) for item in items]
                if self._lost_since_report_unflagged():
                    self._safe(lambda: self.on_gap(True))
                if self._call_with_retries(self.write, batch):
                    with self._cond:
                        self._counts["written"] += len(batch)
                        self._counts["batches"] += 1
                else:
                    with self._cond:
                        self._counts["failed"] += len(batch)
                        self._lost_since_report += len(batch)
                    self._safe(lambda: self.on_gap(False))
        except Exception as exc:
            log.exception("sink %s failed", self.name)
            self._note_error(f"internal error: {exc!r}")
        finally:
            self._report_losses(force=True)
            self._safe(self.close)

    def _lost_since_report_unflagged(self) -> bool:
        """True once per overflow episode: drops happened since the last on_gap call."""
        with self._cond:
            dropped = self._counts["dropped"]
        if dropped != self._gap_flagged:
            self._gap_flagged = dropped
            return True
        return False

    def _call_with_retries(self, fn: Callable[..., None], batch: Optional[List[SinkFrame]]) -> bool:
        attempt = 0
        while True:
            try:
                fn() if batch is None else fn(batch)
                return True
            except Exception as exc:
                self._note_error(f"{type(exc).__name__}: {exc}")
                if attempt >= self.max_retries:
                    self.context.report(
                        f"sink {self.name}: giving up after {attempt + 1} attempts: {exc}"
                    )
                    return False
                delay = min(self.retry_max_delay, self.retry_delay * (2**attempt))
                delay *= random.uniform(0.5, 1.5)
                attempt += 1
                with self._cond:
                    self._counts["retries"] += 1
                    remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._stopping:
                    time.sleep(min(delay, remaining))  # flushing: retry until the deadline
                else:
                    self._stop_event.wait(delay)

    def _note_error(self, text: str) -> None:
        self.last_error = text
        with self._cond:
            self._counts["errors"] += 1
        log.warning("sink %s: %s", self.name, text)

    def _report_losses(self, force: bool = False) -> None:
        """At most one ``error`` event per second summing the frames lost meanwhile."""
        now = time.monotonic()
        with self._cond:
            lost = self._lost_since_report
            if not lost or (not force and now - self._last_report < 1.0):
                return
            self._lost_since_report = 0
            self._last_report = now
        self.context.report(f"sink {self.name}: {lost} frame(s) lost (queue full or write failed)")

    def _safe(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            log.exception("sink %s: %s failed", self.name, getattr(fn, "__name__", fn))
            self._note_error(f"{getattr(fn, '__name__', fn)}: {exc!r}")


def stop_sinks(sinks: List[Sink], timeout: float) -> bool:
    """Stop every sink within ``timeout`` seconds in all (they flush in parallel)."""
    deadline = time.monotonic() + timeout
    for sink in sinks:
        sink.request_stop(timeout)
    return all([sink.stop(max(0.0, deadline - time.monotonic())) for sink in sinks])


def _frame(
    raw: Any, received_at: float, connection: Optional[str], message: Optional[Message]
) -> SinkFrame:
    """One queued frame as a :class:`SinkFrame`: its envelope from the decoded message, or
    parsed here when there is none (a frame that is not a JSON object keeps type "")."""
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", errors="replace")
    if message is not None:
        return SinkFrame(
            text,
            received_at,
            message.connection_id or connection,
            message.type or "",
            message.channel,
            message.id,
            message=message,
        )
    frame = SinkFrame(text, received_at, connection)
    obj = frame.obj
    if obj is not None:
        mtype, channel, sid = obj.get("type"), obj.get("channel"), obj.get("id")
        frame.type = mtype if isinstance(mtype, str) else ""
        frame.channel = channel if isinstance(channel, str) else None
        frame.id = None if sid is None else str(sid)
        conn = obj.get("connection_id")
        if isinstance(conn, str):
            frame.connection = conn
    return frame


def _parse(text: str) -> Optional[Dict[str, Any]]:
    try:
        obj = loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
