"""The pipeline builder: creates one client's engine parts in dependency order, each from parts
that already exist (no part is patched after it was made).

Order (README "Threading model")::

    lifecycle, lock, counters -> local state store -> subscription registry -> event hub
    -> worker pool (stopped) -> event emitter -> worker side (Delivery) -> idle watchdog
    -> CPU placement -> connection pool (its first connection and I/O side, not started)
    -> REST budget and drift repair

Two pairs of parts need each other; neither cycle is closed by a setter:

- The worker pool runs the worker side, which reports through the emitter, which schedules
  event callbacks onto the pool: the pool is created stopped and gets its handler (and its drop
  listener, the I/O side) in :meth:`Pipeline.start`.
- A connection reports to its I/O side, which sends through the connection: the connection
  is created first and gets its listener when it starts. The connection pool
  (``engine/_pool.py``) makes each (connection, I/O side) pair through :meth:`Pipeline._connect`,
  the first at once, others when subscriptions need them.

A topic's placement and end (its last handle released) are handed to the registry with each
``add`` (the pool's ``place`` and ``end_topic``), and the started/stopping flags live in a
:class:`Lifecycle` that the registry, the I/O sides and the client share.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .._route_limits import RouteLimiter
from ..events import Counters, Emitter, EventHub
from ..rest import IndexerRestClient
from ..state._store import LocalState
from ..transport._connection import Connection
from ..transport._dial_gate import DialGate
from ..transport._io_baton import IoBaton
from ..transport._options import ConnectionOptions
from ._cpu_placement import AutoAffinity
from ._drift_repair import DriftRepair
from ._io_side import LimitHandler, Router
from ._pool import ConnectionPool
from ._subscriptions import ConnectionView, SubscriptionRegistry
from ._watchdog import IdleWatchdog, parse_limits
from ._worker_pool import Dispatcher, OverflowPolicy
from ._worker_side import Delivery

__all__ = ["COUNTERS", "NOT_STARTED", "Lifecycle", "Pipeline"]

log = logging.getLogger("dydx_ws.client")

NOT_STARTED = (
    "this client was never started: call client.start() (or use "
    "'with DydxWebSocketClient(...) as client:') before waiting for it"
)

# An idle worker is woken once this many messages wait for it, or when the I/O thread runs out
# of buffered input (Connection calls on_idle before blocking): one wake-up per burst, not per
# frame (a wake-up per frame costs a thread switch and halved throughput in measurements).
WAKE_BATCH = 32

#: ``stats()`` counters. ``resyncs`` is the total of ``resubscribes`` (re-subscribed on the wire
#: for a fresh snapshot: overflow, undecodable update, idle watchdog) and ``drift_repairs``
#: (state replaced from REST by drift repair).
COUNTERS = (
    "frames",
    "decode_errors",
    "server_errors",
    "unrouted",
    "dropped",
    "resyncs",
    "resubscribes",
    "drift_repairs",
    "decode_resyncs",
    "snapshot_retries",
    "no_snapshot_drops",
    "uncrossed",
    "idle_resyncs",
    "callback_errors",
    "reconnects",
    "connect_failures",
    "link_failures",
    "protocol_violations",
)


class Lifecycle:
    """Whether the client was started, is stopping, and started with a connection."""

    def __init__(self) -> None:
        self.started = False
        self.stopping = False
        self.connected_mode = False  # started with a connection (else: fed, e.g. by a replay)

    def is_stopping(self) -> bool:
        return self.stopping

    def not_started(self) -> Optional[str]:
        """Why waiting for a subscription cannot succeed yet, or None."""
        return None if self.started else NOT_STARTED


class Pipeline:
    """The wired parts of one client (attributes are the parts; see the module docstring)."""

    def __init__(
        self,
        *,
        options: ConnectionOptions,
        workers: int,
        queue_size: int,
        overflow: OverflowPolicy,
        block_timeout: float,
        uncross: str,
        idle_limits: Optional[Mapping[str, Any]],
        rest: Optional[IndexerRestClient],
        rest_route_limits: Optional[Mapping[str, Tuple[int, float]]],
        check_interval: Optional[float],
        confirm_delay: float,
        auto_affinity: bool,
        subscription_limits: Optional[Mapping[str, int]] = None,
        max_connections: Optional[int] = None,
        connection_grace: float = 10.0,
    ) -> None:
        self.lifecycle = Lifecycle()
        self.lock = threading.RLock()  # guards subscribe/unsubscribe against the I/O side
        self.counters = Counters(COUNTERS)
        self.store = LocalState(uncross)
        self.registry = SubscriptionRegistry(self.lock, self.lifecycle.not_started)
        self.hub = EventHub()
        self.pool = Dispatcher(
            workers=workers,
            queue_size=queue_size,
            overflow=overflow,
            block_timeout=block_timeout,
            on_handler_error=_log_worker_error,
            wake_batch=WAKE_BATCH,
        )
        self.emitter = Emitter(self.hub, self.pool.call_soon)  # events run on a worker
        self.delivery = Delivery(self.registry, self.store, self.emitter, self.counters)
        limits = parse_limits(idle_limits)
        self.watchdog = IdleWatchdog(self.registry, self.store.markets, limits) if limits else None
        self.auto_affinity = AutoAffinity.create(self.threads) if auto_affinity else None
        self._options = dataclasses.replace(options, dial_gate=DialGate(), io_baton=IoBaton())
        self.connections = ConnectionPool(
            registry=self.registry,
            lock=self.lock,
            make=self._connect,
            counter_names=COUNTERS,
            limits=subscription_limits,
            max_connections=max_connections,
            grace=connection_grace,
            watchdog=self.watchdog,
            tick=self.auto_affinity.tick if self.auto_affinity is not None else None,
        )
        # The SDK's own REST requests (drift repair, back-fill) share one per-route budget.
        self.route_limiter = RouteLimiter(rest_route_limits) if rest_route_limits else None
        self.background_rest = rest
        if rest is not None and self.route_limiter is not None:
            self.background_rest = rest.with_limiter(self.route_limiter)
        self.drift: Optional[DriftRepair] = None
        if check_interval and self.background_rest is not None:
            self.drift = DriftRepair(
                store=self.store,
                registry=self.registry,
                call_soon=self.pool.call_soon,
                emitter=self.emitter,
                counters=self.counters,
                connected=self.connections.all_connected,
                rest=self.background_rest,
                interval=check_interval,
                confirm_delay=confirm_delay,
            )

    def _connect(
        self, index: int, on_limit: LimitHandler, tick: Optional[Callable[[float], None]]
    ) -> Tuple[Connection, Router, Counters]:
        """Connection ``index`` of the pool (not started), its I/O side and its counters."""
        name = self._options.thread_name
        options = dataclasses.replace(
            self._options, thread_name=f"{name}-{index}" if index else name
        )
        connection = Connection(options)
        counters = Counters(COUNTERS)
        router = Router(
            url=options.url,
            registry=ConnectionView(self.registry, index),
            dispatcher=self.pool,
            state=self.store,
            emitter=self.emitter,
            counters=counters,
            lock=self.lock,
            connection=connection,
            is_stopping=self.lifecycle.is_stopping,
            tick=tick,
            index=index,
            on_limit=on_limit,
        )
        return connection, router, counters

    def counts(self) -> Dict[str, int]:
        """Every counter: the workers' and drift repair's plus every connection's I/O side."""
        io = self.connections.totals()["counters"]
        return {name: value + io.get(name, 0) for name, value in self.counters.items()}

    @property
    def router(self) -> Router:
        """The first connection's I/O side (the one :meth:`DydxWebSocketClient.feed` plays)."""
        return self.connections.primary.router

    def start(self, *, connect: bool) -> None:
        """Start the workers and, with ``connect``, drift repair and the I/O threads."""
        self.pool.start(self.delivery, on_drop=self.connections.on_drop)
        if connect and self.drift is not None:
            # Every SDK thread runs before the I/O thread does: cpu_affinity="auto" pins the
            # threads alive at its first tick, on the I/O thread.
            self.drift.start()
        self.connections.start(connect=connect)

    def threads(self) -> List[Optional[threading.Thread]]:
        """The SDK's own threads (None for one not started)."""
        drift = self.drift.thread if self.drift is not None else None
        return [*self.pool.threads(), *self.connections.threads(), drift]


def _log_worker_error(key: Any, item: object, exc: BaseException) -> None:
    log.error("internal error while delivering %s", key, exc_info=exc)
