"""Lifecycle events delivered to ``client.on(name, callback)``, and the registry that runs them.

Event callbacks run on a worker thread (never on the I/O thread), in the order the events
happened; an event callback that raises is logged and does not affect the others. At most
``max_pending`` events wait for slow callbacks: beyond that new events are dropped and counted,
and one ``error`` event (kind ``"events_dropped"``) reports how many once there is room again.
An event never holds a whole frame: ``raw`` is an excerpt of at most ``RAW_EXCERPT`` bytes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

__all__ = [
    "EVENTS",
    "ConnectedEvent",
    "Counters",
    "DisconnectedEvent",
    "Emitter",
    "ErrorEvent",
    "EventHub",
    "GroupEvent",
    "ReconnectedEvent",
]

log = logging.getLogger("dydx_ws.events")

Key = Tuple[str, Optional[str]]
EVENTS = ("connected", "disconnected", "reconnected", "error", "resync", "group")
MAX_PENDING_EVENTS = 1000  # events waiting for their callbacks
RAW_EXCERPT = 512  # characters or bytes of a frame an error event keeps


@dataclass(frozen=True)
class ConnectedEvent:
    """A connection opened (``reconnect`` is False for its first open). ``connection``: which
    connection of the client's pool (``stats()["connections"]``; 0 is the first)."""

    url: str
    reconnect: bool
    attempts: int = 0
    connection: int = 0


@dataclass(frozen=True)
class DisconnectedEvent:
    """A connection closed; the client reconnects it unless it is stopping or gave up (the
    other connections of the pool are not affected)."""

    code: Optional[int]
    reason: str
    error: Optional[BaseException]
    stopping: bool = False
    connection: int = 0


@dataclass(frozen=True)
class ReconnectedEvent:
    """Every subscription of a connection was re-sent after it reconnected: which were restored
    (confirmed by the server), which failed or were still unconfirmed at the deadline, and how
    long the gap was."""

    restored: List[Key]
    failed: List[Key]
    gap_seconds: float
    attempts: int
    connection: int = 0


@dataclass(frozen=True)
class ErrorEvent:
    """Something went wrong without stopping the client.

    ``kind``: ``"decode"`` (a frame could not be decoded), ``"server"`` (the server sent an
    ``error``), ``"subscription"`` (a subscription failed), ``"callback"`` (a user callback
    raised), ``"overflow"`` (messages dropped: the subscription is re-subscribed), ``"connection"``
    (connect failed or the link died), ``"state"`` (local state could not apply a message),
    ``"resync"`` (a local book or account differed from REST and was replaced), ``"desync"`` (a
    snapshot or stateful update could not be decoded: the state is stale and re-subscribed),
    ``"uncross"`` (a crossed book had levels removed or reduced), ``"unrouted"`` (data or an ack
    for a topic nobody subscribed to; rate-limited), ``"events_dropped"`` (event callbacks were
    too slow: that many events were dropped). ``raw`` is at most the first ``RAW_EXCERPT``
    characters or bytes of the frame.
    """

    kind: str
    message: str
    channel: Optional[str] = None
    id: Optional[str] = None
    exception: Optional[BaseException] = None
    raw: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class ResyncEvent:
    """Local state was replaced: it differed from REST beyond in-flight updates (``reason``
    ``"drift"``), or the subscription went silent while connected and was re-subscribed
    (``reason`` starting with ``"idle"``: the idle watchdog; no differences listed)."""

    channel: str
    id: Optional[str]
    differences: int
    detail: List[Tuple[Any, ...]]
    reason: str = "drift"


@dataclass(frozen=True)
class GroupEvent:
    """A market joined (``joined``) or left a :class:`~dydx_ws.SubscriptionGroup` that follows
    the markets (``ALL_MARKETS``): ``reason`` is ``"listed"``, ``"retried"`` (refused before,
    subscribed again), ``"status FINAL_SETTLEMENT"`` or ``"not in the markets list"``."""

    channel: str
    ticker: str
    joined: bool
    reason: str


class EventHub:
    """Callbacks per event name; thread-safe registration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: Dict[str, List[Callable[[Any], Any]]] = {name: [] for name in EVENTS}

    def add(self, name: str, callback: Callable[[Any], Any]) -> Callable[[], None]:
        if name not in self._callbacks:
            raise ValueError(f"unknown event {name!r}; choose from {', '.join(EVENTS)}")
        if not callable(callback):
            raise ValueError("callback must be callable")
        with self._lock:
            self._callbacks[name] = [*self._callbacks[name], callback]

        def remove() -> None:
            with self._lock:
                self._callbacks[name] = [c for c in self._callbacks[name] if c is not callback]

        return remove

    def has(self, name: str) -> bool:
        return bool(self._callbacks[name])

    def run(self, name: str, event: Any) -> None:
        for callback in self._callbacks[name]:
            try:
                callback(event)
            except Exception:
                log.exception("%s event callback %r raised", name, callback)


class Emitter:
    """Hands events to the worker pool (never runs them on the calling thread): event callbacks
    run in order on the worker of one internal key; at most ``max_pending`` wait (see the module
    docstring)."""

    KEY: Hashable = ("__events__", None)

    def __init__(
        self,
        hub: EventHub,
        call_soon: Callable[[Hashable, Callable[[], None]], bool],
        max_pending: int = MAX_PENDING_EVENTS,
    ):
        self._hub = hub
        self._call_soon = call_soon
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending = 0
        self._unreported = 0  # dropped since the last "events_dropped" report
        #: Events dropped because ``max_pending`` were already waiting (``stats()``).
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Events waiting for their callbacks."""
        return self._pending

    def has(self, name: str) -> bool:
        """Whether ``on(name, ...)`` has a listener (e.g. someone handles ``"error"`` events)."""
        return self._hub.has(name)

    def emit(self, name: str, event: Any) -> None:
        if not self._hub.has(name):
            return
        with self._lock:
            if self._pending >= self._max_pending:
                self.dropped += 1
                self._unreported += 1
                return
            self._pending += 1
        if not self._call_soon(self.KEY, lambda: self._run(name, event)):
            self._done()

    def _run(self, name: str, event: Any) -> None:
        try:
            self._hub.run(name, event)
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            dropped = self._unreported if self._pending < self._max_pending // 2 else 0
            self._unreported -= dropped
        if dropped:
            text = (
                f"{dropped} events dropped: on(...) callbacks were too slow "
                f"(at most {self._max_pending} events wait)"
            )
            log.warning(text)
            self.emit("error", ErrorEvent("events_dropped", text))

    def error(
        self,
        kind: str,
        message: str,
        *,
        channel: Optional[str] = None,
        id: Optional[str] = None,
        exception: Optional[BaseException] = None,
        raw: Any = None,
    ) -> None:
        log.debug("error event %s: %s", kind, message)
        if exception is not None and _is_long(getattr(exception, "raw", None)):
            with contextlib.suppress(AttributeError):  # an event never holds a whole frame
                exception.raw = excerpt(exception.raw)  # type: ignore[attr-defined]
        event = ErrorEvent(kind, message, channel, id, exception, excerpt(raw))
        self.emit("error", event)


def _is_long(raw: Any) -> bool:
    return isinstance(raw, (str, bytes, bytearray, memoryview)) and len(raw) > RAW_EXCERPT


def excerpt(raw: Any) -> Any:
    """The first ``RAW_EXCERPT`` characters or bytes of a frame (a copy, never a view)."""
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw[:RAW_EXCERPT])
    if isinstance(raw, (str, bytes)) and len(raw) > RAW_EXCERPT:
        return raw[:RAW_EXCERPT]
    return raw


class Counters(Dict[str, int]):
    """The client's counters (``stats()``). Counters with a single writer thread (the I/O thread's
    frame counts) are bumped with ``+=``; those written from several threads use :meth:`add`,
    which cannot lose an increment to a thread switch."""

    def __init__(self, names: Tuple[str, ...]) -> None:
        super().__init__(dict.fromkeys(names, 0))
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self[name] += n
