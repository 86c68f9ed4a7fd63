"""The worker pool's Dispatcher (engine/_worker_pool.py): ordering, parallelism, overflow,
errors, shutdown.

Synchronisation is by Events with generous timeouts, never by sleeping. The only waits that
measure time check that something is still blocked (which noise can only make more true).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any, Callable, Dict, Hashable, Iterator, List, Tuple

import pytest

from dydx_ws.engine import _worker_pool as dispatch
from dydx_ws.engine._worker_pool import Dispatcher, OverflowPolicy

WAIT = 10.0  # generous timeout for anything that should happen "soon"
_counter = itertools.count()


def _threads(prefix: str) -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix + "-")]


@pytest.fixture
def make() -> Iterator[Callable[..., Dispatcher]]:
    """Factory of started dispatchers with a unique thread prefix; checks cleanup afterwards."""
    created: List[Tuple[Dispatcher, str]] = []

    def factory(handler: Callable[[Hashable, object], None], **kwargs: Any) -> Dispatcher:
        prefix = f"test-dispatch-{next(_counter)}"
        on_drop = kwargs.pop("on_drop", None)
        d = Dispatcher(name_prefix=prefix, **kwargs)
        created.append((d, prefix))
        return d.start(handler, on_drop=on_drop)

    yield factory
    for d, prefix in created:
        assert d.stop(WAIT)
        assert _threads(prefix) == []


class Gate:
    """A handler helper that blocks on chosen items until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def block(self) -> None:
        self.entered.set()
        assert self.release.wait(WAIT)


def drained(d: Dispatcher, keys: List[Hashable]) -> None:
    """Wait until everything queued so far for ``keys`` has run."""
    events = []
    for key in keys:
        ev = threading.Event()
        d.call_soon(key, ev.set)
        events.append(ev)
    for ev in events:
        assert ev.wait(WAIT)


# --- ordering and parallelism ---------------------------------------------------------------


def test_per_key_order_and_affinity_with_several_workers(make: Callable[..., Dispatcher]) -> None:
    seen: Dict[Hashable, List[int]] = {}
    threads: Dict[Hashable, set] = {}
    lock = threading.Lock()

    def handler(key: Hashable, item: object) -> None:
        with lock:
            seen.setdefault(key, []).append(item)  # type: ignore[arg-type]
            threads.setdefault(key, set()).add(threading.current_thread().name)

    d = make(handler, workers=4, queue_size=100_000)
    keys = [("v4_trades", f"K{i}-USD") for i in range(50)]
    n = 20_000
    for i in range(n):
        assert d.submit(keys[i % len(keys)], i)
    drained(d, keys)
    for j, key in enumerate(keys):
        assert seen[key] == list(range(j, n, len(keys)))
        assert len(threads[key]) == 1
    stats = d.stats()
    assert stats["processed"] == n and stats["dropped"] == 0
    assert sorted(w["keys"] for w in stats["workers"]) == [12, 12, 13, 13]
    assert len({name for names in threads.values() for name in names}) == 4


def test_blocked_key_does_not_stop_other_key(make: Callable[..., Dispatcher]) -> None:
    gate = Gate()
    b_done = threading.Event()

    def handler(key: Hashable, item: object) -> None:
        if key == "A":
            gate.block()
        elif item == "last":
            b_done.set()

    d = make(handler, workers=2)
    d.submit("A", 1)
    assert gate.entered.wait(WAIT)
    for i in range(100):
        d.submit("B", i)
    d.submit("B", "last")
    assert d.worker_of("A") != d.worker_of("B")
    assert b_done.wait(WAIT), "key B stalled behind a blocked handler of key A"
    gate.release.set()


def test_items_submitted_before_start_run_after_start() -> None:
    got: List[object] = []
    done = threading.Event()
    d = Dispatcher(name_prefix="pre-start")
    for i in range(3):
        d.submit("k", i)
    d.start(lambda k, i: (got.append(i), i == 2 and done.set()))
    assert done.wait(WAIT)
    assert got == [0, 1, 2]
    assert d.stop(WAIT)


# --- overflow --------------------------------------------------------------------------------


def _blocked_pool(
    make: Callable[..., Dispatcher], **kwargs: Any
) -> Tuple[Dispatcher, Gate, List[Tuple[Hashable, object]], List[Tuple[Hashable, int]]]:
    """One worker whose handler is stuck on the first item ("blocker")."""
    gate = Gate()
    ran: List[Tuple[Hashable, object]] = []
    drops: List[Tuple[Hashable, int]] = []

    def handler(key: Hashable, item: object) -> None:
        if item == "blocker":
            gate.block()
        ran.append((key, item))

    d = make(handler, workers=1, queue_size=3, on_drop=lambda k, n: drops.append((k, n)), **kwargs)
    assert d.submit("k0", "blocker")
    assert gate.entered.wait(WAIT)
    return d, gate, ran, drops


def test_drop_newest(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.DROP_NEWEST)
    assert [d.submit(f"k{i}", i) for i in range(1, 4)] == [True, True, True]
    assert d.stats()["depth"] == 3
    assert d.submit("k4", 4) is False
    assert d.submit("k5", 5) is False
    assert drops == [("k4", 1), ("k5", 1)]
    stats = d.stats()
    assert stats["dropped"] == 2 and stats["depth"] == 3 and stats["workers"][0]["max_depth"] == 3
    gate.release.set()
    drained(d, ["k0"])
    assert ran == [("k0", "blocker"), ("k1", 1), ("k2", 2), ("k3", 3)]


def test_drop_oldest_reports_the_dropped_items_key(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow="drop_oldest")
    for i in range(1, 6):
        assert d.submit(f"k{i}", i) is True
    assert drops == [("k1", 1), ("k2", 1)]
    assert d.stats()["dropped"] == 2
    gate.release.set()
    drained(d, ["k0"])
    assert ran == [("k0", "blocker"), ("k3", 3), ("k4", 4), ("k5", 5)]


def test_drop_oldest_never_drops_control_calls(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.DROP_OLDEST)
    assert d.call_soon("k0", lambda: ran.append(("k0", "ctrl")))
    for i in range(1, 5):
        d.submit("k0", i)
    assert drops == [("k0", 1)]
    gate.release.set()
    drained(d, ["k0"])
    assert ran == [("k0", "blocker"), ("k0", "ctrl"), ("k0", 2), ("k0", 3), ("k0", 4)]


def test_block_times_out_then_drops_newest(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.BLOCK, block_timeout=0.05)
    for i in range(1, 4):
        assert d.submit("k0", i)
    assert d.submit("k0", 4) is False
    assert drops == [("k0", 1)]
    gate.release.set()
    drained(d, ["k0"])
    assert ran == [("k0", "blocker"), ("k0", 1), ("k0", 2), ("k0", 3)]


def test_block_waits_for_room(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.BLOCK, block_timeout=WAIT)
    for i in range(1, 4):
        assert d.submit("k0", i)
    result: List[bool] = []
    producer = threading.Thread(target=lambda: result.append(d.submit("k0", 4)))
    producer.start()
    producer.join(0.2)
    assert producer.is_alive(), "submit should block while the queue is full"
    gate.release.set()
    producer.join(WAIT)
    assert result == [True] and drops == []
    drained(d, ["k0"])
    assert ran == [("k0", "blocker")] + [("k0", i) for i in range(1, 5)]


def test_stop_releases_a_blocked_producer(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.BLOCK, block_timeout=60.0)
    for i in range(1, 4):
        d.submit("k0", i)
    result: List[bool] = []
    producer = threading.Thread(target=lambda: result.append(d.submit("k0", 4)))
    producer.start()
    producer.join(0.1)
    assert producer.is_alive()
    assert d.stop(0.0) is False  # the handler is still blocked
    producer.join(WAIT)
    assert result == [False] and d.stats()["rejected"] == 1
    assert drops == []  # refused because stopping: counted as rejected, not an overflow drop
    gate.release.set()
    assert d.stop(WAIT) is True
    assert ran == [("k0", "blocker")] and d.stats()["discarded"] == 3


def test_call_soon_does_not_count_against_the_bound(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.DROP_NEWEST)
    for _ in range(10):
        assert d.call_soon("k0", lambda: None)
    for i in range(1, 4):
        assert d.submit("k0", i)
    assert drops == [] and d.stats()["depth"] == 3
    gate.release.set()
    drained(d, ["k0"])
    assert ran == [("k0", "blocker"), ("k0", 1), ("k0", 2), ("k0", 3)]


def test_drop_without_on_drop_is_logged(
    make: Callable[..., Dispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate()
    d = make(lambda k, i: gate.block(), queue_size=1, overflow=OverflowPolicy.DROP_NEWEST)
    d.submit("k", 0)
    assert gate.entered.wait(WAIT)
    d.submit("k", 1)
    with caplog.at_level(logging.WARNING, logger="dydx_ws.engine._worker_pool"):
        assert d.submit("k", 2) is False
    assert "dropped 1 item for key 'k'" in caplog.text
    gate.release.set()


# --- errors and control calls ---------------------------------------------------------------


def test_handler_exception_is_isolated_and_reported(make: Callable[..., Dispatcher]) -> None:
    errors: List[Tuple[Hashable, object, BaseException]] = []
    ran: List[object] = []

    def handler(key: Hashable, item: object) -> None:
        if item in (2, 5):
            raise RuntimeError(f"boom {item}")
        ran.append(item)

    d = make(handler, on_handler_error=lambda k, i, e: errors.append((k, i, e)))
    for i in range(8):
        d.submit("k", i)
    drained(d, ["k"])
    assert ran == [0, 1, 3, 4, 6, 7]
    assert [(k, i, str(e)) for k, i, e in errors] == [("k", 2, "boom 2"), ("k", 5, "boom 5")]
    stats = d.stats()
    assert stats["handler_errors"] == 2 and stats["processed"] == 8


def test_handler_exception_logged_and_broken_error_callback_survived(
    make: Callable[..., Dispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    def bad_callback(key: Hashable, item: object, exc: BaseException) -> None:
        raise ValueError("callback bug")

    d1 = make(lambda k, i: 1 / 0)
    d2 = make(lambda k, i: 1 / 0, on_handler_error=bad_callback)
    with caplog.at_level(logging.ERROR, logger="dydx_ws.engine._worker_pool"):
        for d in (d1, d2):
            d.submit("k", 1)
            d.submit("k", 2)
            drained(d, ["k"])
    assert "handler failed for key 'k'" in caplog.text
    assert "on_handler_error callback failed" in caplog.text
    assert d1.stats()["handler_errors"] == 2 and d2.stats()["handler_errors"] == 2


def test_call_soon_runs_in_order_with_items(make: Callable[..., Dispatcher]) -> None:
    log: List[object] = []
    d = make(lambda k, i: log.append(i), workers=3)
    for i in range(10):
        d.submit("k", i)
    d.call_soon("k", lambda: log.append("ctrl"))
    for i in range(10, 20):
        d.submit("k", i)
    drained(d, ["k"])
    assert log == [*range(10), "ctrl", *range(10, 20)]


def test_call_soon_exception_is_reported(make: Callable[..., Dispatcher]) -> None:
    errors: List[BaseException] = []

    def fail() -> None:
        raise KeyError("ctrl")

    d = make(lambda k, i: None, on_handler_error=lambda k, i, e: errors.append(e))
    d.call_soon("k", fail)
    drained(d, ["k"])
    assert len(errors) == 1 and isinstance(errors[0], KeyError)


# --- key assignment -------------------------------------------------------------------------


def test_keys_go_to_least_loaded_worker_and_release_forgets(
    make: Callable[..., Dispatcher],
) -> None:
    d = make(lambda k, i: None, workers=2)
    for key in ("a", "b", "c"):
        d.submit(key, 0)
    assert [d.worker_of(k) for k in ("a", "b", "c")] == [0, 1, 0]
    d.release("a")
    drained(d, ["b", "c"])
    assert d.worker_of("a") is None
    assert [w["keys"] for w in d.stats()["workers"]] == [1, 1]
    d.release("unknown")  # no-op
    d.submit("d", 0)
    assert d.worker_of("d") == 0


def test_submit_after_release_keeps_the_key_on_its_worker(
    make: Callable[..., Dispatcher],
) -> None:
    gate = Gate()
    seen: List[Tuple[str, object]] = []

    def handler(key: Hashable, item: object) -> None:
        if item == "blocker":
            gate.block()
        seen.append((threading.current_thread().name, item))

    d = make(handler, workers=2)
    d.submit("a", "blocker")
    assert gate.entered.wait(WAIT)
    d.release("a")
    d.submit("a", "after")  # cancels the release: must not move to the idle worker
    gate.release.set()
    drained(d, ["a"])
    assert d.worker_of("a") == 0
    assert seen[0][0] == seen[1][0] and [s[1] for s in seen] == ["blocker", "after"]


# --- wake-up protocol -----------------------------------------------------------------------


def test_no_lost_wakeup(make: Callable[..., Dispatcher], monkeypatch: pytest.MonkeyPatch) -> None:
    """With the idle re-check timeout made huge, a lost wake-up would hang a round."""
    monkeypatch.setattr(dispatch, "_IDLE_WAIT", 3600.0)
    got = threading.Event()
    d = make(lambda k, i: got.set(), workers=2)
    for i in range(2000):
        got.clear()
        d.submit(i % 7, i)
        assert got.wait(WAIT), f"lost wake-up at round {i}"


def test_flush_wakes_a_worker_with_pending_items(
    make: Callable[..., Dispatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "_IDLE_WAIT", 3600.0)
    done = threading.Event()
    d = make(lambda k, i: done.set(), wake_batch=100)
    drained(d, ["k"])  # the worker is idle now
    d.submit("k", 1)
    d.flush()
    assert done.wait(WAIT)


# --- shutdown -------------------------------------------------------------------------------


def test_stop_joins_every_thread_and_is_idempotent() -> None:
    d = Dispatcher(workers=3, name_prefix="stop-idem").start(lambda k, i: None)
    threads = _threads("stop-idem")
    assert sorted(t.name for t in threads) == ["stop-idem-0", "stop-idem-1", "stop-idem-2"]
    assert all(t.daemon for t in threads)  # a script without stop() still exits
    for i in range(100):
        d.submit(i, i)
    started = time.monotonic()
    assert d.stop(WAIT) is True
    assert time.monotonic() - started < WAIT
    assert _threads("stop-idem") == []
    assert d.stop(WAIT) is True and d.running is False
    assert d.submit("k", 1) is False and d.call_soon("k", lambda: None) is False
    assert d.stats()["rejected"] == 1
    with pytest.raises(RuntimeError):
        d.start(lambda k, i: None)


def test_stop_before_start() -> None:
    d = Dispatcher()
    d.submit("k", 1)
    assert d.stop(1.0) is True
    assert d.stats()["discarded"] == 1


def test_stop_discards_and_counts_pending_items(make: Callable[..., Dispatcher]) -> None:
    d, gate, ran, drops = _blocked_pool(make, overflow=OverflowPolicy.DROP_NEWEST)
    for i in range(1, 4):
        d.submit("k0", i)
    assert d.stop(0.0) is False  # handler still blocked
    gate.release.set()
    assert d.stop(WAIT) is True
    assert ran == [("k0", "blocker")]
    stats = d.stats()
    assert stats["discarded"] == 3 and stats["processed"] == 1 and stats["depth"] == 0
    assert drops == []  # discards at stop are counted, not reported as overflow drops


def test_stop_from_inside_a_handler(make: Callable[..., Dispatcher]) -> None:
    result: List[bool] = []
    returned = threading.Event()
    holder: List[Dispatcher] = []

    def handler(key: Hashable, item: object) -> None:
        if item == "stop":
            result.append(holder[0].stop(WAIT))
            returned.set()

    d = make(handler, workers=3)
    holder.append(d)
    for key in ("a", "b", "c"):
        d.submit(key, 0)
    d.submit("b", "stop")
    assert returned.wait(WAIT)
    assert result == [True]
    for t in _threads(d.stats()["workers"][0]["name"].rsplit("-", 1)[0]):
        t.join(WAIT)
    assert not any(w["alive"] for w in d.stats()["workers"])


def test_stop_is_bounded_when_a_handler_blocks_forever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forever = threading.Event()  # set only at the end, to let the thread go
    entered = threading.Event()

    def handler(key: Hashable, item: object) -> None:
        entered.set()
        forever.wait(60)

    d = Dispatcher(workers=2, name_prefix="stuck").start(handler)
    try:
        d.submit("k", 1)
        assert entered.wait(WAIT)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="dydx_ws.engine._worker_pool"):
            assert d.stop(0.2) is False
        assert time.monotonic() - started < WAIT
        leaked = d.leaked_threads()
        assert [t.name for t in leaked] == [f"stuck-{d.worker_of('k')}"]
        assert "did not exit within the stop timeout" in caplog.text
        assert "'k'" in caplog.text
        assert d.stats()["workers"][d.worker_of("k") or 0]["busy_key"] == "k"
    finally:
        forever.set()
    leaked[0].join(WAIT)
    assert d.stop(WAIT) is True and _threads("stuck") == []


# --- arguments and stats --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workers": 0},
        {"workers": True},
        {"queue_size": 0},
        {"queue_size": 1.5},
        {"overflow": "coalesce"},
        {"block_timeout": -1},
        {"block_timeout": float("inf")},
        {"wake_batch": 0},
    ],
)
def test_invalid_arguments(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Dispatcher(**kwargs)


def test_handler_must_be_callable() -> None:
    with pytest.raises(ValueError):
        Dispatcher().start("nope")  # type: ignore[arg-type]


def test_stats_shape(make: Callable[..., Dispatcher]) -> None:
    d = make(lambda k, i: None, workers=2, queue_size=50)
    d.submit("a", 1)
    drained(d, ["a"])
    stats = d.stats()
    assert stats["processed"] == 1 and stats["keys"] == 1 and stats["running"] is True
    assert stats["queue_size"] == 50 and stats["overflow"] == "block"
    assert set(stats["workers"][0]) == {
        "name",
        "depth",
        "max_depth",
        "processed",
        "dropped",
        "discarded",
        "handler_errors",
        "keys",
        "alive",
        "busy_key",
        "busy_for",
    }
    assert OverflowPolicy("drop_newest") is OverflowPolicy.DROP_NEWEST


# --- handled items are freed by the producer --------------------------------------------------


class Tracked:
    """An item that records which thread freed it."""

    freed_on: List[str] = []

    def __del__(self) -> None:
        Tracked.freed_on.append(threading.current_thread().name)


def handled(d: Dispatcher, key: Hashable) -> None:
    """Wait until the batch holding what was queued so far for ``key`` is finished: the second
    marker runs in a later batch, taken only after the first was handed back."""
    drained(d, [key])
    drained(d, [key])


def test_handled_items_are_freed_by_the_producer_on_its_next_submit_or_flush(
    make: Callable[..., Dispatcher],
) -> None:
    Tracked.freed_on = []
    d = make(lambda key, item: None)
    d.submit("k", Tracked())
    handled(d, "k")  # handled, but held until the producer comes back
    assert Tracked.freed_on == []
    d.submit("k", "next")  # the producer frees what was handled meanwhile
    assert Tracked.freed_on == [threading.current_thread().name]
    d.submit("k", Tracked())
    handled(d, "k")
    d.flush()  # the client flushes whenever its I/O thread is about to wait
    assert Tracked.freed_on == [threading.current_thread().name] * 2


def test_stop_frees_handled_items(make: Callable[..., Dispatcher]) -> None:
    Tracked.freed_on = []
    d = make(lambda key, item: None)
    d.submit("k", Tracked())
    handled(d, "k")
    assert d.stop(WAIT)
    assert len(Tracked.freed_on) == 1
