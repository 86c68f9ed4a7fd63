"""One pool's I/O threads take turns decoding: a fair baton.

Decoding holds the GIL, so the I/O threads of a pool's connections never decode at the same
time anyway; but when several of them have frames waiting, they all compete for the GIL, and
every forced hand-off costs a context switch (measured by ``bench/pool.py``: 10 I/O threads under
a flood cost up to 1.5x the CPU per message of one). Holding this baton while a thread reads and
dispatches one burst of frames means only one of them competes with the workers, as a single
connection does. The baton is handed over in arrival order, so no connection is starved: each
waits at most one burst of every other, and its heartbeat is never late.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Deque, Optional

__all__ = ["IoBaton"]


class IoBaton:
    """A FIFO lock: ``with baton:`` around one burst of reading."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: Deque[threading.Lock] = deque()
        self.handoffs = 0  # turns passed to a waiting thread

    def __enter__(self) -> IoBaton:
        with self._mutex:
            if not self._held:
                self._held = True
                return self
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder: the baton is ours, still marked held
        return self

    def __exit__(self, *_: object) -> None:
        with self._mutex:
            turn: Optional[threading.Lock] = self._waiters.popleft() if self._waiters else None
            if turn is None:
                self._held = False
                return
            self.handoffs += 1
        turn.release()
