"""socks' fixed-window rate limiter (``socks/src/lib/rate-limit.ts``), one per connection."""

from __future__ import annotations

import time
from typing import Callable, Dict, Tuple


class FixedWindowLimiter:
    """Counts hits per key in a fixed window starting at the first hit after the last one expired.

    A hit is limited iff a window already existed and the window's point count exceeds ``points``:
    with ``points=2`` the 3rd hit within ``window`` seconds of the window start is limited.
    Expired windows are pruned once more than ``PRUNE_AT`` keys are held, so a long-lived
    connection that subscribes to ever new ids does not grow the table without bound.
    """

    PRUNE_AT = 1024

    def __init__(
        self,
        points: int,
        window: float,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.points = points
        self.window = window
        self.enabled = enabled
        self._clock = clock
        self._windows: Dict[str, Tuple[float, int]] = {}

    def hit(self, key: str) -> bool:
        """Record one hit for ``key``; True if this hit is over the limit."""
        if not self.enabled:
            return False
        now = self._clock()
        existing = self._windows.get(key)
        if existing is not None and now - existing[0] < self.window:
            start, points = existing[0], existing[1] + 1
        else:
            start, points = now, 1
        self._windows[key] = (start, points)
        if len(self._windows) > self.PRUNE_AT:
            self._prune(now)
        return existing is not None and points > self.points

    def _prune(self, now: float) -> None:
        expired = [k for k, (start, _) in self._windows.items() if now - start >= self.window]
        for k in expired:
            del self._windows[k]

    def __len__(self) -> int:
        return len(self._windows)
