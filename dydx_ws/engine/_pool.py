"""The client's connections: as many as the server's per-connection limits require.

The server admits 32 subscriptions per market channel on one connection (256 per account
channel, 1 for block height; docs/protocol.md §4.4). The pool places every new subscription on
the first connection with room for its channel and opens another connection when none has room,
so one client holds any number of markets:

- Placement is for life: a subscription stays on its connection (its wire order is kept), and
  each connection re-sends only its own subscriptions when it reconnects
  (:class:`~dydx_ws.engine._subscriptions.ConnectionView`). Connections reconnect on their own.
- Connections open lazily, and their handshakes are paced pool-wide; a 429 on one holds back
  every dial of the pool (``transport/_dial_gate.py``).
- A server refusal for the per-connection limit (its limits can be lower than ours) lowers that
  connection's limit for the channel and moves the subscription to another connection.
- A connection left without subscriptions closes after ``grace`` seconds (the first one, which
  carries ``connected``, stays). ``max_connections`` caps the pool: past it a subscribe raises
  :class:`~dydx_ws.SubscriptionError` saying so.

Each connection has its own I/O thread (``dydx-ws-io``, ``dydx-ws-io-1``, ...); workers, local
state, events and the registry are shared. Calls that change placement hold the client lock.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Tuple

from ..errors import SubscriptionError
from ..events import Counters
from ..protocol._channels import CHANNELS, Topic, find
from ..state._store import Key
from ..transport._connection import Connection
from ._io_side import DecodedTap, LimitHandler, Router
from ._subscriptions import SubscriptionRegistry
from ._watchdog import IdleWatchdog

__all__ = ["DEFAULT_GRACE", "ConnectionPool", "PooledConnection"]

log = logging.getLogger("dydx_ws.engine._pool")

DEFAULT_GRACE = 10.0  # seconds an emptied connection stays open (a re-subscribe may follow)

#: ``make(index, on_limit, tick)``: a connection (not started), its router and its counters.
MakeConnection = Callable[
    [int, LimitHandler, Optional[Callable[[float], None]]], Tuple[Connection, Router, Counters]
]


class PooledConnection:
    """One connection of the pool, its router, and what is placed on it."""

    def __init__(self, index: int, connection: Connection, router: Router, counters: Counters):
        self.index = index
        self.connection = connection
        self.router = router
        self.counters = counters  # its I/O-side counters (summed in stats())
        self.counts: Dict[str, int] = {}  # subscriptions per channel placed on it
        self.limits: Dict[str, int] = {}  # lower limits the server announced for it
        self.empty_since: Optional[float] = None

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    def state(self) -> str:
        if self.router.gave_up.is_set():
            return "failed"
        if not self.connection.alive:
            return "closed" if self.connection.thread is not None else "not started"
        return "connected" if self.connection.connected.is_set() else "connecting"

    def stats(self, now: float) -> Dict[str, Any]:
        last = self.router.last_frame_at
        return {
            "index": self.index,
            "id": self.router.connection_id,
            "state": self.state(),
            "subscriptions": {ch: n for ch, n in self.counts.items() if n},
            "frames": self.counters["frames"],
            "bytes": self.connection.bytes_received,
            "last_message_age": None if last is None else max(0.0, now - last),
            "reconnects": self.counters["reconnects"],
            "last_error": self.router.last_connection_error,
        }


class ConnectionPool:
    """Places subscriptions on connections, opens and closes connections (see module doc)."""

    def __init__(
        self,
        *,
        registry: SubscriptionRegistry,
        lock: threading.RLock,
        make: MakeConnection,
        counter_names: Tuple[str, ...],
        limits: Optional[Mapping[str, int]] = None,
        max_connections: Optional[int] = None,
        grace: float = DEFAULT_GRACE,
        watchdog: Optional[IdleWatchdog] = None,
        tick: Optional[Callable[[float], None]] = None,
    ) -> None:
        self._registry = registry
        self._lock = lock  # the client's
        self._make = make
        self._limits = _limits(limits)
        self.max_connections = max_connections
        self._grace = grace
        self._watchdog = watchdog
        self._tick = tick
        self.members: Dict[int, PooledConnection] = {}
        self._retired: List[PooledConnection] = []  # closing; joined by reap() or stop()
        self._retired_counters = Counters(counter_names)
        self._retired_bytes = 0
        self._next_index = 0
        self._started = False
        self._fed = False  # started without a connection: every subscription on the first
        self.frame_taps: Tuple[Callable[[Any, float], None], ...] = ()
        self.decoded_taps: Tuple[DecodedTap, ...] = ()
        #: Called with each connection's I/O thread once started (fixed ``cpu_affinity``).
        self.on_start: Optional[Callable[[Optional[threading.Thread]], None]] = None
        self.moves = 0
        self.opened = 0
        self.closed = 0
        self.primary = self._open()

    # -- placement (client lock held) -------------------------------------------------------
    def place(self, topic: Topic, exclude: Optional[PooledConnection] = None) -> int:
        """The index of the connection ``topic`` goes on (opened if needed); raises
        :class:`SubscriptionError` when every connection is full and the cap is reached."""
        member = self._room_for(topic, exclude)
        member.counts[topic.channel] = member.counts.get(topic.channel, 0) + 1
        member.empty_since = None
        return member.index

    def _room_for(self, topic: Topic, exclude: Optional[PooledConnection]) -> PooledConnection:
        channel = topic.channel
        if self._fed:
            return self.primary
        failed = self.gave_up()
        if failed is not None:  # the client is done: a new subscription fails there at once
            return failed
        for member in self.members.values():
            if member is exclude:
                continue
            if member.counts.get(channel, 0) < self.limit(member, channel):
                return member
        if self.max_connections is not None and len(self.members) >= self.max_connections:
            target = f"{channel} {topic.key[1]}" if topic.key[1] else channel
            raise SubscriptionError(
                f"cannot subscribe to {target}: all {len(self.members)} connections hold their "
                f"limit of {channel} subscriptions (max_connections={self.max_connections})",
                channel=channel,
                id=topic.key[1],
            )
        return self._open()

    def limit(self, member: PooledConnection, channel: str) -> int:
        configured = self._limits.get(channel, 1 << 30)
        return min(configured, member.limits.get(channel, configured))

    def end_topic(self, topic: Topic, owner: int) -> None:
        """The last handle of ``topic`` went (registry lock held): its connection ends it."""
        member = self.members.get(owner)
        if member is None:
            return
        member.router.end_topic(topic)
        member.counts[topic.channel] = max(0, member.counts.get(topic.channel, 0) - 1)
        if member.size == 0 and member is not self.primary:
            member.empty_since = time.monotonic()

    def move(self, key: Key, index: int, limit: Optional[int]) -> bool:
        """``key`` was refused on connection ``index`` for its per-connection limit: place it on
        another connection (False: none can take it; it fails with the server's text)."""
        with self._lock:
            entry = self._registry.get(key)
            member = self.members.get(index)
            if entry is None or member is None or entry.owner != index:
                return True  # already ended or moved: nothing to do
            channel = key[0]
            held = member.counts.get(channel, 0)
            member.limits[channel] = limit if limit is not None else max(1, held - 1)
            try:
                target = self.place(entry.topic, exclude=member)
            except SubscriptionError as exc:
                log.warning("%s", exc)
                return False
            member.counts[channel] = max(0, held - 1)
            member.router.hand_over(key)
            entry.owner = target
            self.moves += 1
            log.info("%s %s moved from connection %d to %d", *key, index, target)
            self.members[target].router.begin_topic(entry.topic)
            return True

    # -- connections --------------------------------------------------------------------------
    def _open(self) -> PooledConnection:
        index = self._next_index
        self._next_index += 1
        tick = self._primary_tick if index == 0 else None
        connection, router, counters = self._make(index, self.move, tick)
        router.frame_taps = self.frame_taps
        router.decoded_taps = self.decoded_taps
        member = PooledConnection(index, connection, router, counters)
        self.members[index] = member
        self.opened += 1
        if self._started and not self._fed:
            log.info("opening connection %d (subscriptions past the limits of the others)", index)
            connection.start(router)
            if self.on_start is not None:
                self.on_start(connection.thread)
        return member

    def start(self, *, connect: bool) -> None:
        """Start every connection made so far; ``connect=False`` (fed): the first one takes
        every subscription and none is opened."""
        self._started = True
        self._fed = not connect
        if self._fed:
            for member in list(self.members.values())[1:]:
                self._fold_into_primary(member)
            return
        for member in self.members.values():
            member.connection.start(member.router)

    def _fold_into_primary(self, member: PooledConnection) -> None:
        with self._lock:
            for topic in self._registry.topics(member.index):
                entry = self._registry.get(topic.key)
                if entry is not None:
                    entry.owner = self.primary.index
            for channel, n in member.counts.items():
                self.primary.counts[channel] = self.primary.counts.get(channel, 0) + n
            del self.members[member.index]

    def _primary_tick(self, now: float) -> None:
        """Housekeeping on the first connection's I/O thread (about once a second)."""
        if self._tick is not None:
            self._tick(now)
        if self._watchdog is not None:
            self._watchdog.tick(now, True, self._resubscribe_idle)
        self.retire_idle(now)

    def _resubscribe_idle(self, key: Key, reason: str) -> bool:
        member = self.owner_of(key)
        return member is not None and member.router.resubscribe_idle(key, reason)

    def retire_idle(self, now: float) -> None:
        """Close connections that stayed empty for ``grace`` seconds; join closed ones."""
        with self._lock:
            for member in list(self.members.values()):
                since = member.empty_since
                if since is None or member.size or now - since < self._grace:
                    continue
                del self.members[member.index]
                self._retired.append(member)
                self.closed += 1
                log.info(
                    "closing connection %d: no subscriptions for %.0f s", member.index, now - since
                )
                member.router.stop_sending()
                member.connection.request_stop()
        self.reap()

    def reap(self) -> None:
        """Join retired connections whose thread has exited (their counters are kept)."""
        for member in list(self._retired):
            if not member.connection.alive and member.connection.stop(0.0):
                self._retired.remove(member)
                self._retired_bytes += member.connection.bytes_received
                for name, value in member.counters.items():
                    self._retired_counters.add(name, value)

    # -- the client's view ----------------------------------------------------------------
    def owner_of(self, key: Key) -> Optional[PooledConnection]:
        entry = self._registry.get(key)
        return self.members.get(entry.owner) if entry is not None else None

    def resubscribe(self, key: Key) -> bool:
        """Re-subscribe ``key`` on its connection (a fresh snapshot); False if it has ended."""
        member = self.owner_of(key)
        return member is not None and member.router.resubscribe(key)

    def on_drop(self, key: Hashable, count: int) -> None:
        """Overflow drops (Dispatcher): reported and re-subscribed by the key's connection."""
        member = self.owner_of(key) if isinstance(key, tuple) else None
        (member or self.primary).router.on_drop(key, count)

    def set_taps(
        self,
        frame_taps: Tuple[Callable[[Any, float], None], ...],
        decoded_taps: Tuple[DecodedTap, ...],
    ) -> None:
        self.frame_taps, self.decoded_taps = frame_taps, decoded_taps
        for member in self.members.values():
            member.router.frame_taps = frame_taps
            member.router.decoded_taps = decoded_taps

    def all_connected(self) -> bool:
        return all(m.connection.connected.is_set() for m in list(self.members.values()))

    def first_unconnected(self) -> Optional[PooledConnection]:
        for member in list(self.members.values()):
            if not member.connection.connected.is_set():
                return member
        return None

    def gave_up(self) -> Optional[PooledConnection]:
        """A connection whose reconnect policy gave up, or None."""
        for member in list(self.members.values()):
            if member.router.gave_up.is_set():
                return member
        return None

    def totals(self) -> Dict[str, Any]:
        """Every connection's I/O-side figures, closed connections included, summed:
        ``counters``, ``bytes``, ``per_channel`` (messages) and ``drops_by_key``."""
        counters = dict(self._retired_counters)
        bytes_received = self._retired_bytes
        per_channel: Dict[str, int] = dict.fromkeys(CHANNELS, 0)
        drops: Dict[Key, int] = {}
        for member in [*self.members.values(), *self._retired]:
            for name, value in member.counters.items():
                counters[name] = counters.get(name, 0) + value
            bytes_received += member.connection.bytes_received
            for name, value in list(member.router.per_channel.items()):
                per_channel[name] = per_channel.get(name, 0) + value
            for key, value in list(member.router.drops_by_key.items()):
                drops[key] = drops.get(key, 0) + value
        return {
            "counters": counters,
            "bytes": bytes_received,
            "per_channel": per_channel,
            "drops_by_key": drops,
        }

    def last_connection_error(self) -> Optional[str]:
        for member in list(self.members.values()):
            if member.router.last_connection_error is not None:
                return member.router.last_connection_error
        return None

    def stats(self) -> List[Dict[str, Any]]:
        now = time.time()
        return [m.stats(now) for m in list(self.members.values())]

    def threads(self) -> List[Any]:
        return [m.connection.thread for m in [*self.members.values(), *self._retired]]

    def stop_sending(self) -> None:
        for member in self.members.values():
            member.router.stop_sending()

    def stop(self, timeout: float) -> bool:
        """Close every connection at once, then join them all within ``timeout``."""
        deadline = time.monotonic() + timeout
        everyone = [*self.members.values(), *self._retired]
        for member in everyone:
            member.connection.request_stop()
        done = True
        for member in everyone:
            done = member.connection.stop(max(0.0, deadline - time.monotonic())) and done
        return done


def _limits(overrides: Optional[Mapping[str, int]]) -> Dict[str, int]:
    """Per-channel subscriptions per connection: the channel table's, with ``overrides``."""
    limits: Dict[str, int] = {}
    for name in CHANNELS:
        spec = find(name)
        if spec is not None and spec.limit is not None:
            limits[name] = spec.limit
    for name, value in (overrides or {}).items():
        if find(name) is None:
            raise ValueError(f"subscription_limits: unknown channel {name!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"subscription_limits[{name!r}] must be an integer >= 1")
        limits[name] = value
    return limits
