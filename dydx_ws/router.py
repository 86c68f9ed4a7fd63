"""The I/O-thread side of the client: what happens to each frame and each connection event.

``Router`` is the :class:`~dydx_ws.connection.ConnectionListener` of the client's connection:

- ``on_open``: re-send every live subscription with its original parameters; after a reconnect,
  report through a ``reconnected`` event what was restored and how long the gap was (once every
  subscription is confirmed or failed, or after a deadline).
- ``on_close``: every subscription goes back to pending and every local book is marked stale.
- ``on_frame``: decode; data goes to the subscription's worker (``Dispatcher.submit``); acks and
  server errors are matched to subscriptions here (:mod:`dydx_ws.server_errors`).
- overflow (``on_drop``): count, report, and re-subscribe so a fresh snapshot replaces the state.

Every method runs on the I/O thread and must stay quick: no user code, no blocking.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Hashable, List, Optional, Set, Tuple

from .connection import CloseInfo, Connection
from .decode import CHANNELS, decode_message
from .delivery import label
from .dispatch import Dispatcher
from .errors import DecodeError, DydxConnectionError
from .events import ConnectedEvent, Counters, DisconnectedEvent, Emitter, ReconnectedEvent
from .local_state import Key, LocalState
from .messages import ConnectedMessage, ErrorMessage, Message, UnsubscribedMessage
from .server_errors import ErrorAction, action_for, keys_of_error
from .subscriptions import SubscriptionRegistry, SubscriptionState, Topic

__all__ = ["Router"]

log = logging.getLogger("dydx_ws.client")

RESTORE_DEADLINE = 15.0  # seconds to wait for every resubscription before "reconnected"
MAX_FETCH_RETRIES = 10  # "Internal error, could not fetch data" retries before failing
RESYNC_MIN_INTERVAL = 2.0  # seconds between two overflow resyncs of one subscription


def describe_close(info: CloseInfo) -> str:
    """``info.describe()`` on one line: a handshake refused with an HTTP status names the status,
    never the page the server sent with it."""
    status = getattr(info.error, "status_code", None)
    if info.error is not None and isinstance(status, int):
        message = getattr(info.error, "status_message", None) or ""
        reason = f" {message}" if isinstance(message, str) and message else ""
        return f"the handshake was answered with HTTP {status}{reason}"
    return " ".join(info.describe().split())


class Router:
    """Connection events and frames in; subscription states, dispatch and events out."""

    def __init__(
        self,
        *,
        url: str,
        registry: SubscriptionRegistry,
        dispatcher: Dispatcher,
        state: LocalState,
        emitter: Emitter,
        counters: Counters,
        lock: threading.RLock,
        is_stopping: Callable[[], bool],
        tick: Optional[Callable[[float], None]] = None,
    ) -> None:
        self._url = url
        self._registry = registry
        self._dispatcher = dispatcher
        self._state = state
        self._emitter = emitter
        self._counters = counters
        self._lock = lock  # the client's: guards ``ready`` against concurrent subscribes
        self._is_stopping = is_stopping
        self._tick = tick  # extra housekeeping on the I/O thread (cpu_affinity="auto")
        self.connection: Optional[Connection] = None  # set once the client created it
        self.ready = False  # connected, and subscriptions are sent as they are made
        self.connection_id: Optional[str] = None
        self.per_channel: Dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.drops_by_key: Dict[Key, int] = {}
        self.frame_taps: Tuple[Callable[[Any, float], None], ...] = ()
        self._opens = 0
        self._attempts = 0
        self._closed_at: Optional[float] = None
        self._restoring: Set[Key] = set()
        self._restore_deadline = 0.0
        self._restore_report: Optional[Tuple[float, int]] = None  # (gap, attempts)
        self._last_resync: Dict[Key, float] = {}
        self.last_connection_error: Optional[str] = None  # stats()["last_connection_error"]
        self.gave_up = threading.Event()  # the reconnect policy gave up: the client is done
        self.give_up_error: Optional[DydxConnectionError] = None

    # -- sending (any thread; callers hold the client lock) ----------------------------------
    def send_subscribe(self, topic: Topic, delay: float = 0.0) -> None:
        assert self.connection is not None
        self.connection.send(topic.subscribe_text(), key=topic.key, subscribe=True, delay=delay)

    def send_unsubscribe(self, topic: Topic) -> None:
        assert self.connection is not None
        self.connection.send(topic.unsubscribe_text(), key=topic.key)

    def forget(self, key: Key) -> None:
        """A subscription ended: no restoration to wait for."""
        self._restoring.discard(key)

    # -- connection events (I/O thread) ------------------------------------------------------
    def on_open(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.ready = True
            self._opens += 1
            reconnect = self._opens > 1
            topics = self._registry.mark_all_pending()
            for topic in topics:
                self.send_subscribe(topic)
            if reconnect:
                self._counters["reconnects"] += 1
                self._restoring = {t.key for t in topics}
                self._restore_deadline = now + RESTORE_DEADLINE
                gap = now - self._closed_at if self._closed_at is not None else 0.0
                self._restore_report = (gap, self._attempts)
        self._emitter.emit("connected", ConnectedEvent(self._url, reconnect, self._attempts))
        self._attempts = 0
        if reconnect:
            self._maybe_report_restored(now)

    def on_close(self, info: CloseInfo) -> None:
        with self._lock:
            self.ready = False
            self._closed_at = info.closed_at
            self._registry.mark_all_pending()
        self._state.mark_books_stale()
        self.connection_id = None
        event = DisconnectedEvent(info.code, info.reason, info.error, self._is_stopping())
        self._emitter.emit("disconnected", event)

    def on_retry(self, delay: float, attempt: int, info: CloseInfo) -> None:
        self._attempts = attempt
        self.last_connection_error = describe_close(info)
        if not info.was_open:
            self._counters["connect_failures"] += 1
            text = (
                f"connect attempt {attempt} failed ({self.last_connection_error}); "
                f"retry in {delay:.2f} s"
            )
            log.info(text)
            self._emitter.error("connection", text, exception=info.error)

    def on_give_up(self, info: CloseInfo) -> None:
        """The reconnect policy gave up: every subscription fails with the cause (their
        ``wait_subscribed`` raises at once) and ``gave_up`` says so to the client."""
        self.last_connection_error = describe_close(info)
        text = f"giving up reconnecting: {self.last_connection_error}"
        log.error(text)
        cause = DydxConnectionError(text)
        self.give_up_error = cause
        self.gave_up.set()
        self._emitter.error("connection", text, exception=cause)
        for topic in self._registry.topics():
            self.fail_for_good(topic.key)

    def fail_for_good(self, key: Key) -> None:
        """Fail ``key`` because the client gave up reconnecting (cause: ``give_up_error``)."""
        cause = self.give_up_error
        if cause is not None:
            self._fail(key, str(cause), cause)

    def on_idle(self) -> None:
        self._dispatcher.flush()

    def on_tick(self, now: float) -> None:
        if self._restore_report is not None:
            self._maybe_report_restored(now)
        if self._tick is not None:
            self._tick(now)

    # -- frames (I/O thread, or a replay) ----------------------------------------------------
    def on_frame(self, data: Any, received_at: Optional[float] = None) -> Optional[Message]:
        """One raw frame in: decode, match, dispatch. Returns the decoded message (None if the
        frame could not be decoded: that is counted and reported)."""
        self._counters["frames"] += 1
        if received_at is None:
            received_at = time.time()
        for tap in self.frame_taps:
            tap(data, received_at)
        try:
            msg = decode_message(data, received_at=received_at)
        except DecodeError as exc:
            self._counters["decode_errors"] += 1
            self._emitter.error("decode", str(exc), channel=exc.channel, exception=exc, raw=data)
            return None
        except Exception as exc:  # a bug of ours must not end the session: report it
            self._counters["decode_errors"] += 1
            log.exception("unexpected error decoding a frame")
            self._emitter.error("decode", f"internal error: {exc!r}", exception=exc, raw=data)
            return None
        mtype = msg.type
        if mtype == "channel_data" or mtype == "channel_batch_data":
            self._route(msg)
        elif mtype == "subscribed":
            self._on_subscribed(msg)
        elif isinstance(msg, ErrorMessage):
            self._on_server_error(msg)
        elif isinstance(msg, ConnectedMessage):
            self.connection_id = msg.connection_id
        elif not isinstance(msg, UnsubscribedMessage):
            self._emitter.error("decode", f"unknown message type {mtype!r}", raw=data)
        return msg

    def _route(self, msg: Message) -> None:
        channel = msg.channel or ""
        key = (channel, msg.id)
        if self._registry.get(key) is None:
            self._counters["unrouted"] += 1  # in flight after an unsubscribe
            return
        self.per_channel[channel] = self.per_channel.get(channel, 0) + 1
        self._dispatcher.submit(key, msg)

    def _on_subscribed(self, msg: Message) -> None:
        key: Key = (msg.channel or "", msg.id)
        with self._lock:  # atomic with a concurrent subscribe of the same topic
            if not self._registry.confirm(key):
                # Subscribed after we unsubscribed (the unsubscribe raced the snapshot fetch):
                # end it again so the server does not stream what nobody wants.
                self._counters["unrouted"] += 1
                if self.ready and msg.channel:
                    wire_id = None if msg.channel in ("v4_markets", "v4_block_height") else msg.id
                    self.send_unsubscribe(Topic(msg.channel, wire_id, False))
                return
            self._restoring.discard(key)
        self._route(msg)
        if self._restore_report is not None:
            self._maybe_report_restored(time.monotonic())

    def _on_server_error(self, msg: ErrorMessage) -> None:
        self._counters["server_errors"] += 1
        text = msg.message
        keys = keys_of_error(msg, self._registry)
        channel, sid = keys[0] if keys else (msg.channel, msg.id)
        self._emitter.error("server", text, channel=channel, id=sid, raw=msg)
        action = action_for(text)
        for key in keys:
            if action is ErrorAction.RETRY:
                self._retry_fetch(key, text)
            elif action is ErrorAction.CONFIRM:
                self._registry.confirm(key, delivered=True)
            elif action is ErrorAction.FAIL:
                self._fail(key, text)

    def _retry_fetch(self, key: Key, text: str) -> None:
        with self._lock:  # the topic must still be live when the subscribe is queued
            retries = self._registry.note_retry(key)
            entry = self._registry.get(key)
            if entry is None:
                return
            if retries <= MAX_FETCH_RETRIES:
                if self.ready:
                    self.send_subscribe(entry.topic, delay=min(30.0, 2.0 ** (retries - 1)))
                return
        self._fail(key, text)

    def _fail(self, key: Key, text: str, cause: Optional[BaseException] = None) -> None:
        if self._registry.fail(key, text, cause) is None:
            return
        with self._lock:
            self._restoring.discard(key)
        entry = self._registry.get(key)
        error = entry.error if entry is not None else None
        self._emitter.error("subscription", text, channel=key[0], id=key[1], exception=error)

    def _maybe_report_restored(self, now: float) -> None:
        with self._lock:
            report = self._restore_report
            if report is None or (self._restoring and now < self._restore_deadline):
                return
            self._restore_report = None
            unconfirmed = set(self._restoring)
            self._restoring = set()
            restored: List[Key] = []
            failed: List[Key] = []
            for topic in self._registry.topics():
                entry = self._registry.get(topic.key)
                ok = entry is not None and entry.state is SubscriptionState.ACTIVE
                (restored if ok and topic.key not in unconfirmed else failed).append(topic.key)
        gap, attempts = report
        self._emitter.emit("reconnected", ReconnectedEvent(restored, failed, gap, attempts))

    # -- overflow (I/O thread, from Dispatcher.submit) ----------------------------------------
    def on_drop(self, key: Hashable, count: int) -> None:
        """Messages of ``key`` were dropped: count, report, resync."""
        self._counters["dropped"] += count
        typed: Key = key  # type: ignore[assignment]
        self.drops_by_key[typed] = self.drops_by_key.get(typed, 0) + count
        self._emitter.error(
            "overflow",
            f"{count} message(s) dropped for {label(typed)}: queue full; resyncing",
            channel=typed[0],
            id=typed[1],
        )
        self.resync(typed)

    def resync(self, key: Key) -> None:
        """Re-subscribe on the wire so a fresh snapshot replaces state that missed messages."""
        now = time.monotonic()
        if now - self._last_resync.get(key, -1e9) < RESYNC_MIN_INTERVAL:
            return
        with self._lock:  # the topic must still be live when its re-subscribe is queued
            entry = self._registry.get(key)
            if entry is None:
                return
            self._last_resync[key] = now
            self._counters.add("resyncs")  # also counted by drift repairs on the workers
            self._state.mark_books_stale(key)
            if self.ready:
                self.send_unsubscribe(entry.topic)
                self.send_subscribe(entry.topic)
