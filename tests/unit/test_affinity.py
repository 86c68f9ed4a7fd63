"""``AutoAffinity`` (``cpu_affinity="auto"``): pin on the first tick, release under contention,
pin again after a growing cool-down. Real threads, a scripted ``CpuProbe``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Dict, Iterator, List, Optional

import pytest

from dydx_ws.engine._cpu_placement import AutoAffinity, CpuProbe

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux thread affinity and two CPUs",
)
ALL = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


class ScriptedProbe(CpuProbe):
    """CPU readings set by the test."""

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.busy: Dict[int, float] = dict.fromkeys(ALL, 0.0)
        self.ours: Dict[str, float] = {}
        self.fail = False

    def current_cpu(self) -> int:
        if self.fail:
            raise OSError("no /proc")
        return self.cpu

    def busy_seconds(self) -> Dict[int, float]:
        if self.fail:
            raise OSError("no /proc")
        return dict(self.busy)

    def thread_seconds(self, thread: threading.Thread) -> float:
        return self.ours.get(thread.name, 0.0)


@pytest.fixture
def threads() -> Iterator[List[threading.Thread]]:
    done = threading.Event()
    started = [
        threading.Thread(target=done.wait, name=f"test-affinity-{i}", daemon=True) for i in range(3)
    ]
    for t in started:
        t.start()
    yield started
    done.set()
    for t in started:
        t.join(5)


def affinity(t: threading.Thread) -> frozenset:  # type: ignore[type-arg]
    assert t.native_id is not None
    return frozenset(os.sched_getaffinity(t.native_id))


def make(threads: List[threading.Thread], probe: ScriptedProbe) -> AutoAffinity:
    extra: List[Optional[threading.Thread]] = [None]  # not started yet: skipped
    return AutoAffinity(lambda: [*threads, *extra], probe=probe, window=2.0, cooldown=10.0)


def test_the_first_tick_pins_every_thread_to_the_current_cpu(
    threads: List[threading.Thread],
) -> None:
    cpu = max(ALL)
    auto = make(threads, ScriptedProbe(cpu))
    assert auto.cpu is None and all(affinity(t) == ALL for t in threads)
    auto.tick(100.0)
    assert auto.cpu == cpu
    assert all(affinity(t) == {cpu} for t in threads)
    assert affinity(threading.current_thread()) == ALL  # only the given threads
    assert auto.stats() == {"mode": "auto", "cpu": cpu, "releases": 0}


def test_own_work_is_not_contention_but_foreign_work_is(threads: List[threading.Thread]) -> None:
    cpu = min(ALL)
    probe = ScriptedProbe(cpu)
    auto = make(threads, probe)
    auto.tick(100.0)
    # A window in which the CPU was fully busy, all of it with our threads: stay.
    probe.busy[cpu] += 2.0
    probe.ours = {"test-affinity-0": 1.5, "test-affinity-1": 0.5}
    auto.tick(101.0)  # not due yet: nothing read
    auto.tick(102.0)
    assert auto.cpu == cpu and auto.releases == 0
    # Next window: 0.4 s of 2 s (20%) was someone else's: under the 25% limit, stay.
    probe.busy[cpu] += 0.4
    auto.tick(104.0)
    assert auto.cpu == cpu
    # Next: 1 s of 2 s foreign: release to every CPU of the process.
    probe.busy[cpu] += 1.0
    auto.tick(106.0)
    assert auto.cpu is None and auto.releases == 1
    assert all(affinity(t) == ALL for t in threads)


def test_pinned_again_after_a_cooldown_that_doubles(threads: List[threading.Thread]) -> None:
    first, other = min(ALL), max(ALL)
    probe = ScriptedProbe(first)
    auto = make(threads, probe)
    auto.tick(0.0)
    probe.busy[first] += 2.0
    auto.tick(2.0)  # released, cool-down 10 s
    assert auto.cpu is None
    probe.cpu = other  # the scheduler moved the I/O thread meanwhile
    auto.tick(11.9)
    assert auto.cpu is None
    auto.tick(12.0)
    assert auto.cpu == other and all(affinity(t) == {other} for t in threads)
    probe.busy[other] += 2.0
    auto.tick(14.0)  # released again: cool-down 20 s now
    assert auto.cpu is None and auto.releases == 2
    auto.tick(33.9)
    assert auto.cpu is None
    auto.tick(34.0)
    assert auto.cpu == other


def test_an_unreadable_proc_gives_up_for_good(threads: List[threading.Thread]) -> None:
    probe = ScriptedProbe(min(ALL))
    auto = make(threads, probe)
    auto.tick(0.0)
    probe.fail = True
    auto.tick(2.0)
    assert auto.cpu is None and all(affinity(t) == ALL for t in threads)
    probe.fail = False
    auto.tick(1e9)
    assert auto.cpu is None  # never again


def test_the_real_probe_reads_this_machine() -> None:
    probe = CpuProbe()
    assert probe.usable()
    assert probe.current_cpu() in ALL
    busy = probe.busy_seconds()
    assert set(busy) >= ALL and all(v >= 0 for v in busy.values())
    assert probe.thread_seconds(threading.current_thread()) > 0


def test_nothing_to_do_with_a_single_cpu() -> None:
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        "from dydx_ws.engine._cpu_placement import AutoAffinity;"
        "print(AutoAffinity.create(lambda: []))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "None", out.stderr
