"""socks' fixed-window rate limiter (``socks/src/lib/rate-limit.ts``), one per connection."""

from __future__ import annotations

import time
from typing import Callable, Dict, Tuple


class FixedWindowLimiter:
    """Counts hits per key in a fixed window starting at the first hit after the last one expired.

    A hit is limited iff a window already existed and the window's point count exceeds ``points``:
    with ``points=2`` the 3rd hit within ``window`` seconds of the window start is limited.
    """

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
        return existing is not None and points > self.points
