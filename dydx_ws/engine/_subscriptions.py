"""Subscriptions: what is sent on the wire, how acknowledgements are matched, and the handles
users hold.

- A :class:`Topic` is one server-side subscription: channel, the id sent on the wire and the
  ``batched`` flag. Its ``key`` is ``(channel, normalised id)`` — the id the server puts on
  ``subscribed`` and data frames (``Channel.frame_id`` in protocol/_channels.py; docs/protocol.md
  §2.6) — so acknowledgements and data are matched exactly.
- A :class:`Subscription` is the handle ``subscribe_*`` returns. Several handles may share one
  topic (one server subscription, callbacks fanned out); the topic is unsubscribed on the wire
  when its last handle goes.
- State machine per topic: ``pending`` (sent or waiting for a connection) → ``active`` on
  ``subscribed``; ``failed`` on a non-retryable server error; back to ``pending`` on disconnect,
  when it is re-sent with its original parameters; ``unsubscribed`` at the end.
"""

from __future__ import annotations

import threading
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from ..errors import DydxWsError, SubscriptionError
from ..protocol._channels import Topic

if TYPE_CHECKING:
    from ..protocol._messages import Message

__all__ = ["ConnectionView", "Subscription", "SubscriptionRegistry", "SubscriptionState"]

Key = Tuple[str, Optional[str]]
Callback = Callable[["Message"], Any]


class SubscriptionState(str, Enum):
    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    UNSUBSCRIBED = "unsubscribed"


class _Entry:
    """Registry-internal state of one topic (guarded by the registry lock)."""

    def __init__(
        self, topic: Topic, on_last_release: Callable[[Topic, int], None], owner: int
    ) -> None:
        self.topic = topic
        self.on_last_release = on_last_release  # ends the topic's server subscription
        self.owner = owner  # the pooled connection it lives on (engine/_pool.py)
        self.handles: List[Subscription] = []
        self.state = SubscriptionState.PENDING
        self.delivered = False  # the current snapshot has been applied to local state
        self.error: Optional[SubscriptionError] = None
        self.changed = threading.Condition()
        self.retries = 0
        self.sent_seq = 0  # order of its last subscribe written on the wire; 0: none unanswered
        self.messages = 0
        self.arrivals = 0  # data frames routed to it on the I/O thread (watchdog.py)
        self.last_message_at: Optional[float] = None  # time.time() of the last message


class Subscription:
    """A live subscription handle: ``state``, ``wait_subscribed(timeout)``, ``unsubscribe()``."""

    def __init__(
        self,
        registry: SubscriptionRegistry,
        entry: _Entry,
        callback: Optional[Callback],
        params: Dict[str, Any],
    ) -> None:
        self._registry = registry
        self._entry = entry
        self._callback = callback
        self._closed = False
        self.params: Dict[str, Any] = params
        """The arguments it was made with (ticker, resolution, address, ...)."""

    @property
    def callback(self) -> Optional[Callback]:
        """The function each message is delivered to (None: state only)."""
        return self._callback

    @property
    def channel(self) -> str:
        return self._entry.topic.channel

    @property
    def id(self) -> Optional[str]:
        """The id the server uses for it (None for markets)."""
        return self._entry.topic.key[1]

    @property
    def key(self) -> Key:
        return self._entry.topic.key

    @property
    def connection(self) -> int:
        """Which connection of the client's pool it lives on (``stats()["connections"]``)."""
        return self._entry.owner

    @property
    def batched(self) -> bool:
        return self._entry.topic.batched

    @property
    def state(self) -> SubscriptionState:
        return SubscriptionState.UNSUBSCRIBED if self._closed else self._entry.state

    @property
    def error(self) -> Optional[SubscriptionError]:
        """Why the server failed it (state ``failed``), else None."""
        return self._entry.error

    @property
    def messages_received(self) -> int:
        return self._entry.messages

    @property
    def last_message_at(self) -> Optional[float]:
        return self._entry.last_message_at

    def wait_subscribed(self, timeout: Optional[float] = None) -> bool:
        """Block until the server confirmed it and its snapshot is in local state (so
        ``client.order_book``, ``markets`` and ``subaccount`` reflect it): True; False on
        timeout (or if unsubscribed).

        Raises :class:`~dydx_ws.SubscriptionError` with the server's text if it failed (also,
        at once, when the client gave up reconnecting: its ``__cause__`` is the
        :class:`~dydx_ws.DydxConnectionError`), and :class:`~dydx_ws.DydxWsError` if the client
        was never started.
        """
        hint = self._registry.not_started()
        if hint is not None:
            raise DydxWsError(hint)
        deadline = None if timeout is None else time.monotonic() + timeout
        entry = self._entry
        with entry.changed:
            while True:
                if self._closed:
                    return False
                if entry.state is SubscriptionState.ACTIVE and entry.delivered:
                    return True
                if entry.state is SubscriptionState.FAILED:
                    assert entry.error is not None
                    raise entry.error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                entry.changed.wait(remaining)

    def unsubscribe(self) -> None:
        """Stop receiving messages; the server subscription ends with the last handle.
        Idempotent; safe from callbacks."""
        self._registry.release(self)

    def __repr__(self) -> str:
        target = f"{self.channel}" + (f" {self.id}" if self.id else "")
        return f"<Subscription {target} {self.state.value}>"


class SubscriptionRegistry:
    """All topics of one client, their handles and states; thread-safe."""

    def __init__(
        self,
        lock: Optional[threading.RLock] = None,
        not_started: Callable[[], Optional[str]] = lambda: None,
    ) -> None:
        # The client passes its own lock: a last release (and its unsubscribe on the wire) must
        # be atomic with a concurrent ``add`` of the same topic, or the unsubscribe could follow
        # the new subscribe and end the server subscription the new handle relies on.
        self._lock = lock if lock is not None else threading.RLock()
        self._entries: Dict[Key, _Entry] = {}
        self._sent = 0  # subscribes written, for last_sent_unanswered
        #: None, or why waiting cannot succeed yet (the client owning it was never started).
        self.not_started = not_started

    # -- user side --------------------------------------------------------------------------
    def add(
        self,
        topic: Topic,
        callback: Optional[Callback],
        params: Dict[str, Any],
        on_last_release: Callable[[Topic, int], None] = lambda topic, owner: None,
        owner: Callable[[], int] = lambda: 0,
    ) -> Tuple[Subscription, bool]:
        """Register a handle; returns it and whether the topic is new (must be sent).
        A new topic is placed by ``owner()`` (the connection it will live on; it may raise);
        ``on_last_release(topic, owner)`` runs under the lock when its last handle goes."""
        with self._lock:
            entry = self._entries.get(topic.key)
            is_new = entry is None or entry.state is SubscriptionState.FAILED
            if is_new:
                old = entry
                entry = _Entry(topic, on_last_release, old.owner if old is not None else owner())
                if old is not None:  # a failed topic is retried afresh, keeping its handles
                    entry.handles = old.handles
                    for h in old.handles:
                        h._entry = entry
                self._entries[topic.key] = entry
            assert entry is not None
            handle = Subscription(self, entry, callback, params)
            entry.handles.append(handle)
            return handle, is_new

    def release(self, handle: Subscription) -> None:
        with self._lock:
            if handle._closed:
                return
            handle._closed = True
            entry = handle._entry
            if handle in entry.handles:
                entry.handles.remove(handle)
            if not entry.handles and self._entries.get(entry.topic.key) is entry:
                del self._entries[entry.topic.key]
                self._set(entry, SubscriptionState.UNSUBSCRIBED)
                entry.on_last_release(entry.topic, entry.owner)  # under the lock: see __init__
        with entry.changed:
            entry.changed.notify_all()

    # -- connection side (I/O thread) ----------------------------------------------------------
    def topics(self, owner: Optional[int] = None) -> List[Topic]:
        """Every live topic (of connection ``owner`` only, if given)."""
        with self._lock:
            return [e.topic for e in self._entries.values() if owner in (None, e.owner)]

    def get(self, key: Key) -> Optional[_Entry]:
        return self._entries.get(key)

    def handles(self, key: Key) -> List[Subscription]:
        entry = self._entries.get(key)
        return list(entry.handles) if entry is not None else []

    def mark_all_pending(self, owner: Optional[int] = None) -> List[Topic]:
        """On disconnect (of connection ``owner``): its live topics must be re-sent; returns
        them."""
        with self._lock:
            out = []
            for entry in self._entries.values():
                if entry.state is not SubscriptionState.FAILED and owner in (None, entry.owner):
                    entry.delivered = False
                    entry.sent_seq = 0
                    self._set(entry, SubscriptionState.PENDING)
                    out.append(entry.topic)
            return out

    def confirm(self, key: Key, *, delivered: bool = False, owner: Optional[int] = None) -> bool:
        """A ``subscribed`` arrived (``delivered``: no snapshot will follow, e.g. "already
        subscribed"); True if it was for a known topic (of connection ``owner``, if given)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or owner not in (None, entry.owner):
                return False
            entry.retries = 0
            entry.sent_seq = 0
            entry.error = None
            entry.delivered = entry.delivered or delivered
            self._set(entry, SubscriptionState.ACTIVE)
            return True

    def mark_delivered(self, key: Key) -> None:
        """The snapshot of ``key`` has been applied to local state (worker thread)."""
        entry = self._entries.get(key)
        if entry is not None and not entry.delivered:
            with entry.changed:
                entry.delivered = True
                entry.changed.notify_all()

    def fail(self, key: Key, text: str, cause: Optional[BaseException] = None) -> Optional[Topic]:
        """``key`` failed for good; ``cause`` (e.g. the DecodeError of its snapshot) becomes the
        ``__cause__`` of the SubscriptionError that ``wait_subscribed`` raises."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.error = SubscriptionError(text, channel=key[0], id=key[1])
            entry.error.__cause__ = cause
            self._set(entry, SubscriptionState.FAILED)
            return entry.topic

    def unconfirm(self, key: Key) -> None:
        """Its snapshot was lost (it could not be decoded): pending again until a new one."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.state is SubscriptionState.ACTIVE:
                entry.delivered = False
                self._set(entry, SubscriptionState.PENDING)

    def note_retry(self, key: Key) -> int:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return 0
            entry.retries += 1
            return entry.retries

    def note_sent(self, key: Key) -> None:
        """A subscribe of ``key`` was written on the wire (I/O thread)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._sent += 1
                entry.sent_seq = self._sent

    def note_answered(self, key: Key) -> None:
        """The server answered the last subscribe of ``key`` (an error about it)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.sent_seq = 0

    def last_sent_unanswered(self, channel: str, owner: Optional[int] = None) -> Optional[Key]:
        """The subscription of ``channel`` whose subscribe was written last and has no answer
        yet: the one a refusal without channel/id (the per-connection limit) is about, since
        the server refuses at once, before answering earlier subscribes still fetching."""
        with self._lock:
            best: Optional[_Entry] = None
            for k, e in self._entries.items():
                if owner not in (None, e.owner) or not (k[0] == channel and e.sent_seq):
                    continue
                if best is None or e.sent_seq > best.sent_seq:
                    best = e
            return best.topic.key if best is not None else None

    def pending_of_channel(self, channel: str, owner: Optional[int] = None) -> List[Key]:
        with self._lock:
            return [
                k
                for k, e in self._entries.items()
                if k[0] == channel
                and e.state is SubscriptionState.PENDING
                and owner in (None, e.owner)
            ]

    def count_message(self, entry: _Entry, received_at: float) -> None:
        entry.messages += 1
        entry.last_message_at = received_at

    def _set(self, entry: _Entry, state: SubscriptionState) -> None:
        with entry.changed:
            entry.state = state
            entry.changed.notify_all()

    def __len__(self) -> int:
        return len(self._entries)


class ConnectionView:
    """The registry as one pooled connection sees it: only the topics placed on it (``owner``).

    Its router asks it what to re-send, which subscribe a refusal is about and where a frame
    goes; a topic moved to another connection is invisible here, so a late frame for it on
    this connection is not applied to state."""

    def __init__(self, registry: SubscriptionRegistry, owner: int) -> None:
        self.registry = registry
        self.owner = owner
        self._entries = registry._entries

    def get(self, key: Key) -> Optional[_Entry]:
        entry = self._entries.get(key)
        return entry if entry is not None and entry.owner == self.owner else None

    def topics(self) -> List[Topic]:
        return self.registry.topics(self.owner)

    def handles(self, key: Key) -> List[Subscription]:
        return self.registry.handles(key) if self.get(key) is not None else []

    def mark_all_pending(self) -> List[Topic]:
        return self.registry.mark_all_pending(self.owner)

    def last_sent_unanswered(self, channel: str, owner: Optional[int] = None) -> Optional[Key]:
        return self.registry.last_sent_unanswered(channel, self.owner)

    def pending_of_channel(self, channel: str) -> List[Key]:
        return self.registry.pending_of_channel(channel, self.owner)

    def confirm(self, key: Key, *, delivered: bool = False) -> bool:
        return self.registry.confirm(key, delivered=delivered, owner=self.owner)

    # By key, of a topic this connection's router just found through ``get``:
    def fail(self, key: Key, text: str, cause: Optional[BaseException] = None) -> Optional[Topic]:
        return self.registry.fail(key, text, cause)

    def unconfirm(self, key: Key) -> None:
        self.registry.unconfirm(key)

    def note_retry(self, key: Key) -> int:
        return self.registry.note_retry(key)

    def note_sent(self, key: Key) -> None:
        self.registry.note_sent(key)

    def note_answered(self, key: Key) -> None:
        self.registry.note_answered(key)
