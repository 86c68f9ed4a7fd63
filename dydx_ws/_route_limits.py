"""Per-route REST budget for the client's own background requests (drift repair, back-fill).

Why: the Indexer limits some routes per IP: ``/v4/orders`` and ``/v4/fills`` to 100 requests per
10 s since 2025 (docs/protocol.md §4.12). A client checking many subaccounts would
otherwise spend that budget in a burst, get 429s, and starve the application's own REST calls on
the same IP.

How: one :class:`RouteLimiter` per client, shared by every background user. For each limited route
(a path prefix) it keeps a sliding window of request times and admits at most ``share`` of the
route's limit per window (half by default, leaving the rest to the application). A request that
would exceed it waits for a free slot if that is at most ``max_wait`` away, else it is deferred:
:class:`RequestDeferred` is raised and counted, and the caller retries on its next pass. A 429
from the server blocks the route for its ``Retry-After`` (milliseconds on dYdX) before anything
else is sent on it. Routes not listed are not limited here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Mapping, Optional, Tuple

from .errors import DydxWsError

__all__ = ["DEFAULT_ROUTE_LIMITS", "RequestDeferred", "RouteLimiter"]

DEFAULT_ROUTE_LIMITS: Mapping[str, Tuple[int, float]] = {
    "/v4/orders": (100, 10.0),
    "/v4/fills": (100, 10.0),
}
DEFAULT_429_WAIT = 10.0  # seconds a 429 without a usable Retry-After blocks its route


class RequestDeferred(DydxWsError):
    """A background REST request was not sent: its route's budget is spent (or a 429 blocks it)
    for longer than the caller may wait. ``route`` and ``retry_in`` (seconds) say which and when."""

    def __init__(self, route: str, retry_in: float) -> None:
        super().__init__(f"request to {route} deferred: route budget spent for {retry_in:.1f} s")
        self.route = route
        self.retry_in = retry_in


class _Route:
    def __init__(self, points: int, window: float) -> None:
        self.points = points
        self.window = window
        self.sent: Deque[float] = deque()
        self.blocked_until = 0.0


class RouteLimiter:
    """Thread-safe per-route budget (see module docs)."""

    def __init__(
        self,
        routes: Mapping[str, Tuple[int, float]] = DEFAULT_ROUTE_LIMITS,
        *,
        share: float = 0.5,
        max_wait: float = 2.0,
        clock: Any = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self._routes: Dict[str, _Route] = {}
        for prefix, (points, window) in routes.items():
            if points < 1 or window <= 0:
                raise ValueError(f"route limit of {prefix}: points >= 1 and window > 0 required")
            self._routes[prefix] = _Route(max(1, int(points * share)), float(window))
        self._max_wait = max_wait
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.waited = 0  # requests that waited for a slot
        self.deferred = 0  # requests not sent (RequestDeferred)
        self.throttled = 0  # 429 answers seen on limited routes
        self.last_deferred: Optional[str] = None

    def _route(self, path: str) -> Optional[Tuple[str, _Route]]:
        for prefix, route in self._routes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, route
        return None

    def close(self) -> None:
        """Wake every waiting request (it is deferred): the client is stopping."""
        self._closed.set()

    def acquire(self, path: str) -> None:
        """Take a slot for a request to ``path``; waits up to ``max_wait`` (interrupted by
        :meth:`close`). Raises :class:`RequestDeferred` when no slot comes in that time."""
        found = self._route(path)
        if found is None:
            return
        prefix, route = found
        waited = False
        deadline = self._clock() + self._max_wait
        while True:
            with self._lock:
                now = self._clock()
                while route.sent and now - route.sent[0] >= route.window:
                    route.sent.popleft()
                free_at = route.blocked_until
                if len(route.sent) >= route.points:
                    free_at = max(free_at, route.sent[0] + route.window)
                if free_at <= now:
                    route.sent.append(now)
                    if waited:
                        self.waited += 1
                    return
                if free_at > deadline:
                    self.deferred += 1
                    self.last_deferred = prefix
                    raise RequestDeferred(prefix, free_at - now)
            waited = True
            pause = free_at - now
            if self._closed.wait(pause):
                raise RequestDeferred(prefix, pause)

    def throttle(self, path: str, retry_after: Optional[float]) -> None:
        """The server answered 429 for ``path``: block its route for ``retry_after`` seconds."""
        found = self._route(path)
        if found is None:
            return
        _, route = found
        with self._lock:
            self.throttled += 1
            wait = retry_after if retry_after is not None else DEFAULT_429_WAIT
            route.blocked_until = max(route.blocked_until, self._clock() + wait)

    def stats(self) -> Dict[str, Any]:
        return {
            "waited": self.waited,
            "deferred": self.deferred,
            "throttled": self.throttled,
            "last_deferred": self.last_deferred,
            "budget": {p: (r.points, r.window) for p, r in self._routes.items()},
        }
