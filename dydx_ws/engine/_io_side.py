"""The I/O-thread side of the client: what happens to each frame and each connection event.

``Router`` is the ``ConnectionListener`` (``transport/_connection.py``) of the client's connection:

- ``on_open``: re-send every live subscription with its original parameters; after a reconnect,
  report through a ``reconnected`` event what was restored and how long the gap was (once every
  subscription is confirmed or failed, or after a deadline).
- ``on_close``: every subscription goes back to pending and every local book is marked stale.
- ``on_frame``: decode; data goes to the subscription's worker (``Dispatcher.submit``); acks and
  server errors are matched to subscriptions here (:mod:`dydx_ws.protocol._server_errors`).
- overflow (``on_drop``), an undecodable update of a stateful channel and a subscription the
  idle watchdog found silent: count, report, mark stale and re-subscribe so a fresh snapshot
  replaces the state (``resubscribe``, one mechanism; REST drift repair is another, in
  ``engine/_drift_repair.py``).
- an undecodable ``subscribed``: the subscription is pending again (its data is not applied to
  state that has no snapshot), re-subscribed with backoff, and failed after
  ``MAX_SNAPSHOT_RETRIES``.
- data or a ``subscribed`` nobody asked for: counted and reported (rate-limited).

Every method runs on the I/O thread and must stay quick: no user code, no blocking.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Hashable, List, Optional, Set, Tuple

from ..errors import DecodeError, DydxConnectionError
from ..events import (
    ConnectedEvent,
    Counters,
    DisconnectedEvent,
    Emitter,
    ReconnectedEvent,
    ResyncEvent,
)
from ..protocol import _json as json_backend
from ..protocol._channels import CHANNELS, ORDERBOOK, STATEFUL, Topic, find, sent_id
from ..protocol._decode import DATA_TYPES, decode_message
from ..protocol._messages import ConnectedMessage, ErrorMessage, Message, UnsubscribedMessage
from ..protocol._server_errors import ErrorAction, action_for, keys_of_error, limit_of
from ..state._store import Key, LocalState
from ..transport._connection import CloseInfo, Connection
from ..transport._frame_reader import ProtocolViolation
from ._subscriptions import ConnectionView, SubscriptionState
from ._throttle import Throttle
from ._worker_pool import Dispatcher
from ._worker_side import label

__all__ = ["DecodedTap", "Router"]

#: ``on_limit(key, connection, limit)``: the server refused ``key`` for its per-connection limit
#: (``limit``, if it said): True if the pool placed it elsewhere (else it fails).
LimitHandler = Callable[[Key, int, Optional[int]], bool]

#: ``tap(raw, received_at, connection_id, message)``: a frame after decoding (message None when
#: it could not be decoded); on the I/O thread, quick, must not raise.
DecodedTap = Callable[[Any, float, Optional[str], Optional[Message]], None]

log = logging.getLogger("dydx_ws.client")

RESTORE_DEADLINE = 15.0  # seconds to wait for every resubscription before "reconnected"
MAX_FETCH_RETRIES = 10  # "Internal error, could not fetch data" retries before failing
RESUBSCRIBE_MIN_INTERVAL = 2.0  # seconds between two re-subscribes of a topic (later: deferred)
MAX_SNAPSHOT_RETRIES = 3  # re-subscribes after an undecodable snapshot before failing
SNAPSHOT_RETRY_DELAY = 0.5  # seconds before the first of them, doubling
UNSUBSCRIBED_GRACE = 10.0  # seconds data for a just-ended subscription is expected, not reported
REPORT_INTERVAL = 1.0  # seconds between two reports of unrouted frames


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
    """Connection events and frames in; subscription states, dispatch and events out. One per
    connection of the pool (``index``); it sees only the subscriptions placed on its
    connection (``registry`` is that connection's view)."""

    def __init__(
        self,
        *,
        url: str,
        registry: ConnectionView,
        dispatcher: Dispatcher,
        state: LocalState,
        emitter: Emitter,
        counters: Counters,
        lock: threading.RLock,
        connection: Connection,
        is_stopping: Callable[[], bool],
        tick: Optional[Callable[[float], None]] = None,
        index: int = 0,
        on_limit: Optional[LimitHandler] = None,
    ) -> None:
        self.index = index
        self._on_limit = on_limit
        self._url = url
        self._registry = registry
        self._dispatcher = dispatcher
        self._state = state
        self._emitter = emitter
        self._counters = counters
        self._lock = lock  # the client's: guards ``ready`` against concurrent subscribes
        self._connection = connection  # sends only; it reports to this router once started
        self._is_stopping = is_stopping
        self._tick = tick  # the pool's housekeeping, on the first connection's I/O thread
        self.ready = False  # connected, and subscriptions are sent as they are made
        self.connection_id: Optional[str] = None
        self.per_channel: Dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.drops_by_key: Dict[Key, int] = {}
        self.frame_taps: Tuple[Callable[[Any, float], None], ...] = ()
        # Called after decoding with (raw, received_at, connection id, message or None): sinks
        # get what this side already knows instead of parsing the frame again.
        self.decoded_taps: Tuple[DecodedTap, ...] = ()
        self.last_frame_at: Optional[float] = None  # time.time() of the last frame
        self._opens = 0
        self._attempts = 0
        self._closed_at: Optional[float] = None
        self._restoring: Set[Key] = set()
        self._restore_deadline = 0.0
        self._restore_report: Optional[Tuple[float, int]] = None  # (gap, attempts)
        self._last_resubscribe: Dict[Key, float] = {}
        self._deferred_resubscribes: Dict[Key, float] = {}  # key -> when it may run
        self._stale_marked: Set[Key] = set()  # a stale marker is queued after the last snapshot
        self._ended: Dict[Key, float] = {}  # key -> when its subscription ended
        self._unrouted_reports = Throttle(REPORT_INTERVAL)
        self.last_connection_error: Optional[str] = None  # stats()["last_connection_error"]
        self.gave_up = threading.Event()  # the reconnect policy gave up: the client is done
        self.give_up_error: Optional[DydxConnectionError] = None

    # -- sending (any thread; callers hold the client lock) ----------------------------------
    def send_subscribe(self, topic: Topic, delay: float = 0.0) -> None:
        key = topic.key
        self._connection.send(
            topic.subscribe_text(),
            key=key,
            subscribe=True,
            delay=delay,
            on_sent=lambda: self._registry.note_sent(key),
        )

    def send_unsubscribe(self, topic: Topic) -> None:
        self._connection.send(topic.unsubscribe_text(), key=topic.key)

    def begin_topic(self, topic: Topic) -> None:
        """A new topic was registered (client lock held): subscribe on the wire now if
        connected, or fail it at once if the client gave up reconnecting (no connection will
        come); else the next ``on_open`` sends it."""
        if self.ready:
            self.send_subscribe(topic)
        elif self.gave_up.is_set():
            self.fail_for_good(topic.key)

    def stop_sending(self) -> None:
        """The client is stopping (client lock held): nothing more is sent."""
        self.ready = False

    def end_topic(self, topic: Topic) -> None:
        """The last handle of ``topic`` went (registry lock held): end it on the wire, drop its
        local state, and free its worker once what is queued for it has run."""
        with self._lock:
            if self.ready:
                self.send_unsubscribe(topic)
            self._state.drop(topic.key)
            self._forget(topic.key)
        self._dispatcher.release(topic.key)

    def hand_over(self, key: Key) -> None:
        """``key`` moved to another connection (client lock held): nothing of it is awaited
        here any more, and its late frames on this connection are expected."""
        self._forget(key)

    def _forget(self, key: Key) -> None:
        """A subscription ended: no restoration to wait for; its in-flight data is expected."""
        self._restoring.discard(key)
        self._deferred_resubscribes.pop(key, None)
        self._stale_marked.discard(key)
        if len(self._ended) > 1024:
            self._ended.clear()
        self._ended[key] = time.monotonic()

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
        event = ConnectedEvent(self._url, reconnect, self._attempts, self.index)
        self._emitter.emit("connected", event)
        self._attempts = 0
        if reconnect:
            self._maybe_report_restored(now)

    def on_close(self, info: CloseInfo) -> None:
        with self._lock:
            self.ready = False
            self._closed_at = info.closed_at
            topics = self._registry.mark_all_pending()
        for topic in topics:  # only this connection's books
            self._state.mark_books_stale(topic.key)
        self.connection_id = None
        stopping = self._is_stopping()
        event = DisconnectedEvent(info.code, info.reason, info.error, stopping, self.index)
        self._emitter.emit("disconnected", event)

    def on_retry(self, delay: float, attempt: int, info: CloseInfo) -> None:
        self._attempts = attempt
        if isinstance(info.error, ProtocolViolation):
            self._counters["protocol_violations"] += 1
        self.last_connection_error = describe_close(info)
        if not info.was_open:
            self._counters["connect_failures"] += 1
            text = (
                f"connect attempt {attempt} failed ({self.last_connection_error}); "
                f"retry in {delay:.2f} s"
            )
        elif info.error is not None or attempt > 1:
            # A link that opened and then failed (an error, or again before it was stable).
            self._counters["link_failures"] += 1
            text = (
                f"the connection failed after it opened ({self.last_connection_error}); "
                f"reconnect attempt {attempt} in {delay:.2f} s"
            )
        else:
            return  # a server close after a stable session: reported as "disconnected"
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
        if self._deferred_resubscribes:
            for key, due in list(self._deferred_resubscribes.items()):
                if due <= now:
                    del self._deferred_resubscribes[key]
                    self.resubscribe(key)
        if self._tick is not None:
            self._tick(now)

    def resubscribe_idle(self, key: Key, reason: str) -> bool:
        """The watchdog found ``key`` silent while connected: re-subscribe and report it."""
        if not self.resubscribe(key):
            return False
        self._counters.add("idle_resyncs")
        self._emitter.emit("resync", ResyncEvent(key[0], key[1], 0, [], reason=reason))
        return True

    # -- frames (I/O thread, or a replay) ----------------------------------------------------
    def on_frame(self, data: Any, received_at: Optional[float] = None) -> Optional[Message]:
        """One raw frame in: decode, match, dispatch. Returns the decoded message (None if the
        frame could not be decoded: that is counted and reported)."""
        self._counters["frames"] += 1
        if received_at is None:
            received_at = time.time()
        self.last_frame_at = received_at
        for tap in self.frame_taps:
            tap(data, received_at)
        try:
            msg = decode_message(data, received_at=received_at)
        except DecodeError as exc:
            self._counters["decode_errors"] += 1
            self._emitter.error("decode", str(exc), channel=exc.channel, exception=exc, raw=data)
            self._on_undecodable(exc, data)
            self._tap_decoded(data, received_at, None)
            return None
        except Exception as exc:  # a bug of ours must not end the session: report it
            self._counters["decode_errors"] += 1
            log.exception("unexpected error decoding a frame")
            self._emitter.error("decode", f"internal error: {exc!r}", exception=exc, raw=data)
            self._tap_decoded(data, received_at, None)
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
        if self.decoded_taps:
            self._tap_decoded(data, received_at, msg)
        return msg

    def _tap_decoded(self, data: Any, received_at: float, msg: Optional[Message]) -> None:
        for tap in self.decoded_taps:
            tap(data, received_at, self.connection_id, msg)

    def _route(self, msg: Message) -> None:
        channel = msg.channel or ""
        key = (channel, msg.id)
        entry = self._registry.get(key)
        if entry is None:
            self._counters["unrouted"] += 1
            self._report_unrouted(key, f"{msg.type} for {label(key)}")
            return
        if entry.state is not SubscriptionState.ACTIVE and channel in STATEFUL:
            # No snapshot confirmed (it could not be decoded, or the subscription failed):
            # an update must not be applied to state it does not belong to.
            self._counters["no_snapshot_drops"] += 1
            return
        entry.arrivals += 1
        self.per_channel[channel] = self.per_channel.get(channel, 0) + 1
        self._dispatcher.submit(key, msg)

    def _report_unrouted(self, key: Key, what: str) -> None:
        """Data or an ack for a topic nobody (or nobody any more) subscribed to: reported as an
        ``error`` event ``"unrouted"`` (rate-limited), unless it is the expected tail of a
        subscription that just ended."""
        ended = self._ended.get(key)
        if ended is not None and time.monotonic() - ended < UNSUBSCRIBED_GRACE:
            return
        known = key[0] in CHANNELS
        held = self._unrouted_reports.allow(known)
        if held is None:
            return
        why = "no subscription of this client" if known else "an unknown channel"
        more = f"; {held} more not reported separately" if held else ""
        self._emitter.error("unrouted", f"{what}: {why}{more}", channel=key[0] or None, id=key[1])

    # -- frames that could not be decoded ----------------------------------------------------
    def _on_undecodable(self, exc: DecodeError, data: Any) -> None:
        """An undecodable frame of a subscription must not leave its state silently wrong: a
        snapshot is retried (and the topic is pending until one decodes), an update of a
        stateful channel re-subscribes it at once."""
        frame = _frame_of(exc.raw if isinstance(exc.raw, dict) else data)
        if frame is None or frame.get("type") not in DATA_TYPES:
            return
        channel, sid = frame.get("channel"), frame.get("id")
        spec = find(channel)
        if spec is None:
            return
        key: Key = (spec.name, spec.frame_id(sid))
        snapshot = frame.get("type") == "subscribed"
        if self._registry.get(key) is None:
            # The id itself may be what is broken: a lone pending topic of the channel it is.
            pending = self._registry.pending_of_channel(spec.name) if snapshot else []
            if len(pending) != 1:
                return
            key = pending[0]
        if snapshot:
            self._retry_snapshot(key, exc)
        elif channel in STATEFUL:
            self._counters["decode_resyncs"] += 1
            self._emitter.error(
                "desync",
                f"an update for {label(key)} could not be decoded: state marked stale and "
                f"resynced from a fresh snapshot ({exc.reason})",
                channel=key[0],
                id=key[1],
                exception=exc,
            )
            self.resubscribe(key)

    def _retry_snapshot(self, key: Key, exc: DecodeError) -> None:
        with self._lock:  # the topic must still be live when its re-subscribe is queued
            entry = self._registry.get(key)
            if entry is None or entry.state is SubscriptionState.FAILED:
                return
            retries = self._registry.note_retry(key)
            self._registry.unconfirm(key)
            self._mark_stale(key)
            if retries <= MAX_SNAPSHOT_RETRIES:
                delay = SNAPSHOT_RETRY_DELAY * 2.0 ** (retries - 1)
                self._counters["snapshot_retries"] += 1
                self._emitter.error(
                    "desync",
                    f"the snapshot of {label(key)} could not be decoded ({exc.reason}); "
                    f"re-subscribing in {delay:.2f} s (retry {retries}/{MAX_SNAPSHOT_RETRIES})",
                    channel=key[0],
                    id=key[1],
                    exception=exc,
                )
                if self.ready:
                    self.send_unsubscribe(entry.topic)
                    self.send_subscribe(entry.topic, delay=delay)
                return
            if self.ready:  # stop the stream of a subscription that is given up
                self.send_unsubscribe(entry.topic)
        text = f"its snapshot could not be decoded {retries} times: {exc}"
        self._fail(key, text, cause=exc)

    def _on_subscribed(self, msg: Message) -> None:
        key: Key = (msg.channel or "", msg.id)
        with self._lock:  # atomic with a concurrent subscribe of the same topic
            if not self._registry.confirm(key):
                # Subscribed after we unsubscribed (the unsubscribe raced the snapshot fetch),
                # or never asked for: end it again so the server does not stream it.
                self._counters["unrouted"] += 1
                self._report_unrouted(key, f"subscribed for {label(key)}")
                if self.ready and msg.channel:
                    wire_id = sent_id(msg.channel, msg.id)
                    self.send_unsubscribe(Topic(msg.channel, wire_id, False))
                return
            self._restoring.discard(key)
        self._stale_marked.discard(key)  # a loss after this snapshot needs its own marker
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
            self._registry.note_answered(key)
            if action is ErrorAction.RETRY:
                self._retry_fetch(key, text)
            elif action is ErrorAction.CONFIRM:
                self._registry.confirm(key, delivered=True)
            elif action is ErrorAction.MOVE:
                # The server's limit can be lower than ours: the pool places it elsewhere.
                if self._on_limit is None or not self._on_limit(key, self.index, limit_of(text)):
                    self._fail(key, text)
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
        event = ReconnectedEvent(restored, failed, gap, attempts, self.index)
        self._emitter.emit("reconnected", event)

    # -- overflow (I/O thread, from Dispatcher.submit) ----------------------------------------
    def on_drop(self, key: Hashable, count: int) -> None:
        """Messages of ``key`` were dropped: count, report, re-subscribe."""
        self._counters["dropped"] += count
        typed: Key = key  # type: ignore[assignment]
        self.drops_by_key[typed] = self.drops_by_key.get(typed, 0) + count
        self._emitter.error(
            "overflow",
            f"{count} message(s) dropped for {label(typed)}: queue full; resubscribing",
            channel=typed[0],
            id=typed[1],
        )
        self.resubscribe(typed)

    def resubscribe(self, key: Key) -> bool:
        """Re-subscribe on the wire so a fresh snapshot replaces state that missed messages.

        The book is stale from now until that snapshot. Within ``RESUBSCRIBE_MIN_INTERVAL`` of
        the previous re-subscribe of ``key`` it is deferred to the end of the interval
        (``on_tick``), never skipped: the snapshot already requested may predate the loss.
        Counted in ``resubscribes`` (and the ``resyncs`` total) when it is sent. False if the
        topic has ended (nothing to re-subscribe)."""
        now = time.monotonic()
        with self._lock:  # the topic must still be live when its re-subscribe is queued
            entry = self._registry.get(key)
            if entry is None:
                return False
            self._mark_stale(key)
            last = self._last_resubscribe.get(key, -1e9)
            if now - last < RESUBSCRIBE_MIN_INTERVAL:
                self._deferred_resubscribes.setdefault(key, last + RESUBSCRIBE_MIN_INTERVAL)
                return True
            self._last_resubscribe[key] = now
            self._counters.add("resubscribes")
            self._counters.add("resyncs")  # the total, with drift repairs (on the workers)
            if self.ready:
                self.send_unsubscribe(entry.topic)
                self.send_subscribe(entry.topic)
        return True

    def report_gap(self, key: Key, reason: str) -> None:
        """Frames of ``key`` were lost before they reached this side (a fed source, e.g. a Redis
        stream): stale until the next snapshot, counted in ``resyncs``, reported as a
        ``resync`` event with ``detail=[("stream_gap", reason)]``."""
        self._mark_stale(key)
        self._counters.add("resyncs")
        self._emitter.emit("resync", ResyncEvent(key[0], key[1], 0, [("stream_gap", reason)]))

    def _mark_stale(self, key: Key) -> None:
        """Stale now, and again on ``key``'s worker after what is queued for it: a snapshot
        already queued must not clear the flag for a loss that came after it (a snapshot routed
        after the loss is newer than it). One such marker per snapshot routed is enough, so
        repeated losses (sustained overflow) queue nothing more."""
        self._state.mark_books_stale(key)
        if key[0] != ORDERBOOK or key in self._stale_marked:
            return
        self._stale_marked.add(key)
        self._dispatcher.call_soon(key, lambda: self._state.mark_books_stale(key))


def _frame_of(data: Any) -> Optional[Dict[str, Any]]:
    """The JSON object of a raw frame, or None (only used on the error path)."""
    if data.__class__ is dict:
        return data  # type: ignore[no-any-return]
    try:
        frame = json_backend.loads(data)
    except Exception:  # not JSON at all: nothing to attribute
        return None
    return frame if frame.__class__ is dict else None
