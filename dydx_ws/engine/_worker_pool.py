"""Key-affine, bounded, batched worker pool: moves decoded messages off the I/O thread.

Architecture::

    I/O thread --submit(key, item)--> worker[i].deque --> thread "dydx-ws-worker-i" --> handler
                                      (bounded: queue_size items per worker, OverflowPolicy)

- Key affinity: the first time a key (``(channel, id)`` in the client) is seen it is assigned to
  the worker with the fewest keys, and every later item of that key goes to the same worker, so
  per-key order is preserved while different keys run in parallel. ``release(key)`` forgets the
  assignment once everything already queued for the key has run.
- Cheap hand-off: each worker owns a ``collections.deque``. The producer appends and wakes the
  worker only if it is idle (then yields the GIL to it at once); a busy worker drains whole
  batches without any wake-up. No wake-up
  can be lost: the worker sets its idle flag, re-checks the deque, and only then waits (with a
  timeout) on its Event, while the producer appends first and checks the flag second.
- Handled items are freed by the producer: a worker hands each finished batch back, and the
  producer drops them on its next ``submit`` or ``flush`` (the client flushes whenever its I/O
  thread is about to wait for input; ``stop`` drops the rest). Memory is then freed and reused
  on the producer's CPU, where the next items are built, instead of bouncing between two CPUs'
  caches (a measurable end-to-end gain on large messages: bench/README.md).
- Bounded: each worker holds at most ``queue_size`` pending items (plus the batch in hand, at
  most ``_MAX_BATCH``); beyond that the :class:`OverflowPolicy` applies and every drop is
  counted and reported through ``on_drop(key, n)``. Control callables (``call_soon``) run in
  order with the key's items, are never dropped and do not count against the bound.
- Isolation: a handler exception is caught, counted and reported through ``on_handler_error``
  (or logged); the worker keeps going.
- Shutdown: ``stop(timeout)`` is idempotent and bounded. Workers finish the item in hand and
  exit; pending items are discarded and counted (``discarded``, not ``on_drop``). It may be
  called from a worker (it never joins itself). A handler that blocks forever cannot be killed
  in Python: its thread is reported as leaked (``stop`` returns False and logs a warning naming
  the thread and key); it is a daemon thread, so it does not keep the interpreter from exiting
  (:mod:`dydx_ws._shutdown` stops running clients at exit).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from enum import Enum
from typing import Any, Callable, Deque, Dict, Hashable, List, Optional, Tuple

__all__ = ["Dispatcher", "OverflowPolicy"]

logger = logging.getLogger("dydx_ws.engine._worker_pool")

_IDLE_WAIT = 0.5  # seconds an idle worker sleeps between re-checks (stop and submit wake it)
_MAX_BATCH = 64  # entries a worker moves from its deque per lock acquisition


class OverflowPolicy(str, Enum):
    """What ``submit`` does when the target worker already holds ``queue_size`` pending items.

    - ``BLOCK``: the producer waits up to ``block_timeout`` seconds for room; if none appears
      the new item is dropped (as ``DROP_NEWEST``). Nothing is lost while the consumer keeps up
      within the timeout, but the I/O thread stalls meanwhile: keep ``block_timeout`` well
      under the server's 10 s pong deadline.
    - ``DROP_OLDEST``: the oldest pending item of that worker (possibly another key's) is
      discarded to make room; ``on_drop`` receives the discarded item's key. Best for state
      that a later message or a re-subscribe replaces anyway.
    - ``DROP_NEWEST``: the new item is discarded at once; ``submit`` returns False.
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class _Call:
    """A control callable queued by ``call_soon``: runs in order, never dropped or counted."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn


_Entry = Tuple[Hashable, object]


class _Worker:
    """One worker's queue, wake-up state and counters (mutated under ``lock`` where noted)."""

    __slots__ = (
        "blocked_producers",
        "busy_key",
        "busy_since",
        "discarded",
        "dropped",
        "handler_errors",
        "idle",
        "index",
        "items",
        "keys",
        "lock",
        "max_depth",
        "name",
        "not_full",
        "pending",
        "processed",
        "stopping",
        "thread",
        "wake",
    )

    def __init__(self, index: int, name: str) -> None:
        self.index = index
        self.name = name
        self.items: Deque[_Entry] = deque()  # guarded by lock
        self.lock = threading.Lock()
        self.not_full = threading.Condition(self.lock)
        self.wake = threading.Event()
        self.idle = False
        self.stopping = False
        self.pending = 0  # data items in `items` (guarded by lock)
        self.blocked_producers = 0  # guarded by lock
        self.keys = 0  # keys assigned (guarded by the dispatcher's assignment lock)
        # Counters: each has a single writer thread (see where they are incremented).
        self.max_depth = 0
        self.processed = 0
        self.handler_errors = 0
        self.dropped = 0
        self.discarded = 0
        self.busy_key: Optional[Hashable] = None
        self.busy_since: Optional[float] = None
        self.thread: Optional[threading.Thread] = None

    def stats(self) -> Dict[str, Any]:
        busy_since = self.busy_since
        thread = self.thread
        return {
            "name": self.name,
            "depth": self.pending,
            "max_depth": self.max_depth,
            "processed": self.processed,
            "dropped": self.dropped,
            "discarded": self.discarded,
            "handler_errors": self.handler_errors,
            "keys": self.keys,
            "alive": thread is not None and thread.is_alive(),
            "busy_key": self.busy_key,
            "busy_for": None if busy_since is None else time.monotonic() - busy_since,
        }


class Dispatcher:
    """Bounded pool of worker threads; items of one key always run in order on one worker.

    ``submit`` is meant to be called from one producer thread (the client's I/O thread);
    ``call_soon``, ``release``, ``flush``, ``stats`` and ``stop`` are safe from any thread.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        queue_size: int = 10_000,
        overflow: OverflowPolicy = OverflowPolicy.BLOCK,
        block_timeout: float = 1.0,
        on_handler_error: Optional[Callable[[Hashable, object, BaseException], None]] = None,
        name_prefix: str = "dydx-ws-worker",
        wake_batch: int = 1,
    ) -> None:
        """Create a stopped pool (items may be queued already); see the module docstring. What
        its workers run, and who hears of drops, is given to :meth:`start`.

        ``wake_batch``: an idle worker is woken once it has this many pending items (default 1:
        at once). With a larger value the producer must call ``flush()`` when it runs out of
        input (e.g. the socket has no buffered data), or items wait up to ``_IDLE_WAIT``.
        """
        for name, value in (("workers", workers), ("queue_size", queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if isinstance(wake_batch, bool) or not isinstance(wake_batch, int) or wake_batch < 1:
            raise ValueError(f"wake_batch must be an int >= 1, got {wake_batch!r}")
        if (
            isinstance(block_timeout, bool)
            or not isinstance(block_timeout, (int, float))
            or not math.isfinite(block_timeout)
            or block_timeout < 0
        ):
            raise ValueError(f"block_timeout must be a finite number >= 0, got {block_timeout!r}")
        try:
            self._overflow = OverflowPolicy(overflow)
        except ValueError:
            choices = ", ".join(p.value for p in OverflowPolicy)
            raise ValueError(f"overflow must be one of {choices}, got {overflow!r}") from None
        self._handler: Optional[Callable[[Hashable, object], None]] = None  # given to start()
        self._queue_size = queue_size
        self._block_timeout = float(block_timeout)
        self._wake_batch = wake_batch
        self._on_drop: Optional[Callable[[Hashable, int], None]] = None  # given to start()
        self._on_handler_error = on_handler_error
        self._workers = [_Worker(i, f"{name_prefix}-{i}") for i in range(workers)]
        self._assign: Dict[Hashable, _Worker] = {}
        self._releasing: Dict[Hashable, object] = {}  # key -> token of its pending release
        self._assign_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._rejected = 0  # submits refused because the pool is stopping
        self._finished: Deque[List[_Entry]] = deque()  # handled batches, freed by the producer

    # --- lifecycle -------------------------------------------------------------------------

    def start(
        self,
        handler: Callable[[Hashable, object], None],
        *,
        on_drop: Optional[Callable[[Hashable, int], None]] = None,
    ) -> Dispatcher:
        """Start the worker threads running ``handler(key, item)`` for every item (idempotent).

        ``on_drop(key, n)`` hears of every overflow drop (on the producer's thread; without it
        drops are logged). Given here, not at construction, because the handler usually reports
        through an event emitter that itself schedules onto this pool. A stopped pool cannot be
        restarted."""
        if not callable(handler):
            raise ValueError("handler must be callable")
        with self._state_lock:
            if self._stopping:
                raise RuntimeError("a stopped Dispatcher cannot be restarted")
            if self._started:
                return self
            self._started = True
            self._handler = handler
            self._on_drop = on_drop
            for w in self._workers:
                w.thread = threading.Thread(target=self._run, args=(w,), name=w.name, daemon=True)
                w.thread.start()
        return self

    def threads(self) -> List[threading.Thread]:
        """The started worker threads."""
        return [w.thread for w in self._workers if w.thread is not None]

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the pool within ``timeout`` seconds; True if every worker thread has exited.

        Workers finish the item in hand and exit; pending items are discarded and counted.
        From a worker thread, that worker exits once its handler returns (it is not joined).
        A worker still stuck in a handler after ``timeout`` is logged as leaked (False).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._state_lock:
            first = not self._stopping
            self._stopping = True
        if first:
            discarded = 0
            for w in self._workers:
                with w.lock:
                    w.stopping = True
                    discarded += self._discard_locked(w)
                    w.not_full.notify_all()
                w.wake.set()
            if discarded:
                logger.info("dispatcher stopping: discarded %d pending items", discarded)
        current = threading.current_thread()
        leaked: List[_Worker] = []
        for w in self._workers:
            thread = w.thread
            if thread is None or thread is current:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                leaked.append(w)
        for w in self._workers:  # items a racing producer appended after the first sweep
            with w.lock:
                self._discard_locked(w)
        self._free_finished()
        for w in leaked:
            busy_since = w.busy_since
            logger.warning(
                "worker thread %s did not exit within the stop timeout: its handler is still "
                "running for key %r (%.1f s); Python cannot kill a thread, it is leaked until "
                "the handler returns",
                w.name,
                w.busy_key,
                0.0 if busy_since is None else time.monotonic() - busy_since,
            )
        return not leaked

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._started and not self._stopping

    def leaked_threads(self) -> List[threading.Thread]:
        """Worker threads still alive after stop() (stuck in a handler); empty if running."""
        if not self._stopping:
            return []
        return [w.thread for w in self._workers if w.thread is not None and w.thread.is_alive()]

    # --- producer side ---------------------------------------------------------------------

    def submit(self, key: Hashable, item: object) -> bool:
        """Queue ``item`` for ``key``'s worker; False if it (the new item) was dropped."""
        if self._stopping:
            self._rejected += 1
            return False
        if self._finished:
            self._free_finished()
        w = self._assign.get(key)
        if w is None or self._releasing:
            w = self._worker_for(key)
        dropped_key: Optional[Tuple[Hashable]] = None  # a 1-tuple: keys may be None
        accepted = True
        with w.lock:
            if w.pending >= self._queue_size:
                if self._overflow is OverflowPolicy.DROP_OLDEST:
                    dropped_key = (self._drop_oldest_locked(w),)
                elif not self._wait_for_room_locked(w):
                    if self._stopping:
                        self._rejected += 1
                        return False
                    w.dropped += 1
                    dropped_key = (key,)
                    accepted = False
            if accepted:
                w.items.append((key, item))
                w.pending += 1
                if w.pending > w.max_depth:
                    w.max_depth = w.pending
        if w.idle and w.pending >= self._wake_batch:
            w.wake.set()
            # Yield the GIL: the woken worker starts on this batch now, not after the
            # interpreter's switch interval (5 ms) while the producer decodes the rest of a
            # burst (bench/versus.py, burst mode: p99 latency of a 500-frame burst ~3x lower).
            time.sleep(0)
        if dropped_key is not None:
            self._report_drop(dropped_key[0])
        return accepted

    def call_soon(self, key: Hashable, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` on ``key``'s worker after the items already queued for it.

        Never dropped and not counted against the bound; False only if the pool is stopping.
        """
        if not callable(fn):
            raise ValueError("fn must be callable")
        if self._stopping:
            return False
        self._enqueue_call(self._worker_for(key), key, fn)
        return True

    def release(self, key: Hashable) -> None:
        """Forget ``key``'s worker once the items already queued for it have run.

        A later ``submit`` of the same key (before that) cancels the release, so the key never
        runs on two workers at once.
        """
        with self._assign_lock:
            w = self._assign.get(key)
            if w is None or self._stopping:
                return
            token = object()
            self._releasing[key] = token

        def forget() -> None:
            with self._assign_lock:
                if self._releasing.get(key) is token:
                    del self._releasing[key]
                    owner = self._assign.pop(key, None)
                    if owner is not None:
                        owner.keys -= 1

        self._enqueue_call(w, key, forget)

    def flush(self) -> None:
        """Wake every idle worker that has pending items (see ``wake_batch``); free handled
        items (see the module docstring)."""
        if self._finished:
            self._free_finished()
        for w in self._workers:
            if w.idle and w.items:
                w.wake.set()

    def stats(self) -> Dict[str, Any]:
        """Counters and gauges: totals plus one dict per worker (depth, max_depth, ...)."""
        per_worker = [w.stats() for w in self._workers]
        totals = {
            name: sum(s[name] for s in per_worker)
            for name in ("depth", "processed", "dropped", "discarded", "handler_errors")
        }
        return {
            **totals,
            "rejected": self._rejected,
            "keys": len(self._assign),
            "running": self.running,
            "queue_size": self._queue_size,
            "overflow": self._overflow.value,
            "workers": per_worker,
        }

    def worker_of(self, key: Hashable) -> Optional[int]:
        """Index of the worker ``key`` is assigned to, or None if it is not assigned."""
        w = self._assign.get(key)
        return None if w is None else w.index

    # --- internals -------------------------------------------------------------------------

    def _worker_for(self, key: Hashable) -> _Worker:
        """Slow path of key lookup: cancel a pending release, or assign the least-loaded worker."""
        with self._assign_lock:
            if self._releasing:
                self._releasing.pop(key, None)
            w = self._assign.get(key)
            if w is None:
                w = min(self._workers, key=lambda c: (c.keys, c.pending, c.index))
                self._assign[key] = w
                w.keys += 1
            return w

    def _free_finished(self) -> None:
        finished = self._finished
        try:
            while finished:
                finished.popleft()
        except IndexError:  # emptied by a concurrent flush()
            pass

    def _enqueue_call(self, w: _Worker, key: Hashable, fn: Callable[[], None]) -> None:
        with w.lock:
            w.items.append((key, _Call(fn)))
        if w.idle:
            w.wake.set()

    def _drop_oldest_locked(self, w: _Worker) -> Hashable:
        """Remove the oldest data item (skipping control calls); return its key."""
        items = w.items
        index = next(i for i, (_, p) in enumerate(items) if type(p) is not _Call)
        key = items[index][0]
        if index == 0:
            items.popleft()
        else:
            del items[index]
        w.pending -= 1
        w.dropped += 1
        return key

    def _wait_for_room_locked(self, w: _Worker) -> bool:
        """BLOCK policy: wait (holding/releasing ``w.lock``) for room; False on timeout."""
        if self._overflow is not OverflowPolicy.BLOCK:
            return False
        deadline = time.monotonic() + self._block_timeout
        while w.pending >= self._queue_size and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            w.wake.set()  # the worker may be idle waiting for a flush (wake_batch > 1)
            w.blocked_producers += 1
            try:
                w.not_full.wait(remaining)
            finally:
                w.blocked_producers -= 1
        return not self._stopping

    def _discard_locked(self, w: _Worker) -> int:
        """Empty ``w``'s queue (lock held); count and return the data items discarded."""
        n = w.pending
        w.items.clear()
        w.pending = 0
        w.discarded += n
        return n

    def _report_drop(self, key: Hashable) -> None:
        if self._on_drop is None:
            logger.warning("dispatch queue full: dropped 1 item for key %r", key)
            return
        try:
            self._on_drop(key, 1)
        except Exception:
            logger.exception("on_drop callback failed for key %r", key)

    def _report_error(self, key: Hashable, item: object, exc: BaseException) -> None:
        if self._on_handler_error is None:
            logger.error("handler failed for key %r", key, exc_info=exc)
            return
        try:
            self._on_handler_error(key, item, exc)
        except Exception:
            logger.exception("on_handler_error callback failed for key %r", key)

    def _run(self, w: _Worker) -> None:
        """Worker loop: move a batch out under the lock, run it, sleep only when idle."""
        items = w.items
        popleft = items.popleft
        handler = self._handler
        assert handler is not None  # set by start() before any worker runs
        monotonic = time.monotonic
        batch: List[_Entry] = []
        while not w.stopping:
            with w.lock:
                n = min(len(items), _MAX_BATCH)
                if n:
                    calls = 0
                    for _ in range(n):
                        entry = popleft()
                        if type(entry[1]) is _Call:
                            calls += 1
                        batch.append(entry)
                    w.pending -= n - calls
                    if w.blocked_producers:
                        w.not_full.notify()
            if not batch:
                # Idle protocol: clear, flag, re-check, then wait. A producer appends first and
                # reads the flag second, so either we see its item or it sees the flag.
                w.wake.clear()
                w.idle = True
                if not items and not w.stopping:
                    w.wake.wait(_IDLE_WAIT)
                w.idle = False
                continue
            for index, (key, payload) in enumerate(batch):
                if w.stopping:
                    rest = sum(1 for _, p in batch[index:] if type(p) is not _Call)
                    with w.lock:
                        w.discarded += rest
                    break
                w.busy_key = key
                w.busy_since = monotonic()
                try:
                    if type(payload) is _Call:
                        payload.fn()
                    else:
                        w.processed += 1
                        handler(key, payload)
                except BaseException as exc:  # isolate: report and keep going
                    w.handler_errors += 1
                    self._report_error(key, payload, exc)
                w.busy_key = None
                w.busy_since = None
            key = payload = None  # hold no handled item here: the producer frees them
            self._finished.append(batch)  # (see the module docstring)
            batch = []
