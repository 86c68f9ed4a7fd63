"""Handshakes of several connections to one server, paced together.

The server's front door answers HTTP 429 to a burst of handshakes and the penalty is per IP, so
connections of one pool never dial at once: each dial waits its turn (``spacing`` apart), and a
429 seen by any of them holds every dial back until the penalty is over.
"""

from __future__ import annotations

import threading
import time

__all__ = ["DialGate"]

DEFAULT_SPACING = 0.25  # seconds between two handshakes of one pool


class DialGate:
    """Shared by the connections of one pool; thread-safe."""

    def __init__(self, spacing: float = DEFAULT_SPACING) -> None:
        self._spacing = spacing
        self._lock = threading.Lock()
        self._next = 0.0  # time.monotonic() of the next free turn
        self._hold = 0.0  # no dial before this (a 429)
        self.penalties = 0  # 429s seen by the pool

    def wait_turn(self, stop: threading.Event) -> bool:
        """Block until this dial may start; False if ``stop`` was set meanwhile. A turn is taken
        only when it is due, so a 429 seen while waiting still holds this dial back."""
        while True:
            with self._lock:
                now = time.monotonic()
                due = max(self._next, self._hold)
                if due <= now:
                    self._next = now + self._spacing
                    return not stop.is_set()
            if stop.wait(due - now):
                return False

    def hold_until(self, until: float) -> None:
        """A 429: no connection of the pool dials before ``until`` (time.monotonic())."""
        with self._lock:
            self.penalties += 1
            self._hold = max(self._hold, until)
