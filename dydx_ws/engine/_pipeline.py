"""The pipeline builder: creates one client's engine parts in dependency order, each from parts
that already exist (no part is patched after it was made).

Order (README "Threading model")::

    lifecycle, lock, counters -> local state store -> subscription registry -> event hub
    -> worker pool (stopped) -> event emitter -> worker side (Delivery) -> idle watchdog
    -> connection (not started) -> REST budget and drift repair -> CPU placement -> I/O side

Two pairs of parts need each other; neither cycle is closed by a setter:

- The worker pool runs the worker side, which reports through the emitter, which schedules
  event callbacks onto the pool: the pool is created stopped and gets its handler (and its drop
  listener, the I/O side) in :meth:`Pipeline.start`.
- The connection reports to the I/O side, which sends through the connection: the connection
  is created first and gets its listener when it starts.

A topic's end (its last handle released) is handed to the registry with each ``add`` (the I/O
side's ``end_topic``), and the started/stopping flags live in a :class:`Lifecycle` that the
registry, the I/O side and the client share.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, List, Mapping, Optional, Tuple

from .._route_limits import RouteLimiter
from ..events import Counters, Emitter, EventHub
from ..rest import IndexerRestClient
from ..state._store import LocalState
from ..transport._connection import Connection
from ..transport._options import ConnectionOptions
from ._cpu_placement import AutoAffinity
from ._drift_repair import DriftRepair
from ._io_side import Router
from ._subscriptions import SubscriptionRegistry
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
        self.connection = Connection(options)
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
                connected=self.connection.connected.is_set,
                rest=self.background_rest,
                interval=check_interval,
                confirm_delay=confirm_delay,
            )
        self.auto_affinity = AutoAffinity.create(self.threads) if auto_affinity else None
        self.router = Router(
            url=options.url,
            registry=self.registry,
            dispatcher=self.pool,
            state=self.store,
            emitter=self.emitter,
            counters=self.counters,
            lock=self.lock,
            connection=self.connection,
            is_stopping=self.lifecycle.is_stopping,
            watchdog=self.watchdog,
            tick=self.auto_affinity.tick if self.auto_affinity is not None else None,
        )

    def start(self, *, connect: bool) -> None:
        """Start the workers and, with ``connect``, drift repair and the I/O thread."""
        self.pool.start(self.delivery, on_drop=self.router.on_drop)
        if connect:
            # Every SDK thread runs before the I/O thread does: cpu_affinity="auto" pins the
            # threads alive at its first tick, on the I/O thread.
            if self.drift is not None:
                self.drift.start()
            self.connection.start(self.router)

    def threads(self) -> List[Optional[threading.Thread]]:
        """The SDK's own threads (None for one not started)."""
        drift = self.drift.thread if self.drift is not None else None
        return [*self.pool.threads(), self.connection.thread, drift]


def _log_worker_error(key: Any, item: object, exc: BaseException) -> None:
    log.error("internal error while delivering %s", key, exc_info=exc)
