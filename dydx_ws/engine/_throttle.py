"""A per-category rate limit for reports a hostile server could otherwise trigger per frame.

``Throttle.allow(category)`` is True at most once per ``interval`` seconds per category and then
also returns how many occurrences were held back since the last report, so a report can say
"and N more" instead of either flooding the event queue or going silent.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Hashable, Optional, Tuple

__all__ = ["Throttle"]


class Throttle:
    """At most one report per category per ``interval`` seconds; thread-safe."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._state: Dict[Hashable, Tuple[float, int]] = {}  # category -> (last report, held)

    def allow(self, category: Hashable) -> Optional[int]:
        """None: hold this one back (it is counted); else the number held back before it."""
        now = self._clock()
        with self._lock:
            last, held = self._state.get(category, (-1e18, 0))
            if now - last < self._interval:
                self._state[category] = (last, held + 1)
                return None
            if len(self._state) > 4096:  # categories may come from the wire: stay bounded
                self._state.clear()
            self._state[category] = (now, 0)
            return held
