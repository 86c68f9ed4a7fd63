"""Where the SDK's own threads run (Linux): ``DydxWebSocketClient(cpu_affinity=...)``.

The I/O thread and the workers never run Python at the same time (they share the GIL), but the
operating system spreads them over cores, so every message the I/O thread builds is read and freed
on another core. Keeping them on one core spares that traffic on large frames under a flood; at a
realistic load the effect is within noise, hence opt-in. ``bench/throughput.py`` measures it
(figures in bench/README.md).

- ``None`` (the default): scheduling is left to the operating system.
- ``"auto"`` (opt-in): :class:`AutoAffinity` pins the SDK's threads to the CPU the I/O thread
  is running on once connected, and lets go as soon as that CPU is busy with other work (another
  process, a GIL-free C extension, the user's own threads): pinned threads cannot move to an idle
  core, so contention must not keep them there. Released threads are pinned again, where the I/O
  thread then runs, after a cool-down that doubles on each release (10 s up to 5 min). Without
  ``os.sched_setaffinity``, ``/proc`` or a second CPU it does nothing.
- a CPU number or numbers: pinned there, always (``pin_threads``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Set, Union

__all__ = ["AutoAffinity", "CpuProbe", "CpuSpec", "parse_cpus", "pin_threads"]

log = logging.getLogger("dydx_ws.engine._cpu_placement")

CpuSpec = Union[int, Iterable[int]]
Threads = Callable[[], Iterable[Optional[threading.Thread]]]


def parse_cpus(spec: Optional[CpuSpec]) -> Optional[FrozenSet[int]]:
    """Validate a ``cpu_affinity`` argument: None, a CPU number or CPU numbers this process may
    use. Raises ``ValueError`` where threads cannot be pinned (not Linux) or a CPU is not ours."""
    if spec is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("cpu_affinity needs os.sched_setaffinity (Linux)")
    cpus = frozenset([spec] if isinstance(spec, int) else spec)
    if not cpus or not all(isinstance(c, int) and not isinstance(c, bool) for c in cpus):
        raise ValueError(
            f"cpu_affinity must be 'auto', None, a CPU number or CPU numbers, got {spec!r}"
        )
    allowed = os.sched_getaffinity(0)
    if not cpus <= allowed:
        raise ValueError(
            f"cpu_affinity {sorted(cpus)} is not within this process's CPUs {sorted(allowed)}"
        )
    return cpus


def pin_threads(cpus: FrozenSet[int], threads: Iterable[Optional[threading.Thread]]) -> None:
    """Restrict each started thread to ``cpus`` (Linux: a thread id is a valid pid here)."""
    for thread in threads:
        if thread is not None and thread.native_id is not None and thread.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                os.sched_setaffinity(thread.native_id, cpus)


class CpuProbe:
    """What :class:`AutoAffinity` reads, from ``/proc`` (tests substitute their own)."""

    def current_cpu(self) -> int:
        """The CPU the calling thread is running on."""
        with open("/proc/thread-self/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[36])  # field 39, "processor"

    def busy_seconds(self) -> Dict[int, float]:
        """Per CPU: seconds spent running anything (not idle or waiting for I/O) since boot."""
        tick = os.sysconf("SC_CLK_TCK")
        busy = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                jiffies = [int(v) for v in values]
                # user nice system idle iowait irq softirq (steal, time the hypervisor gave
                # to others, is left out: moving to another CPU would not get it back)
                busy[int(name[3:])] = (sum(jiffies[:7]) - jiffies[3] - jiffies[4]) / tick
        return busy

    def thread_seconds(self, thread: threading.Thread) -> float:
        """CPU seconds the thread has used."""
        ident = thread.ident
        if ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(ident))

    def usable(self) -> bool:
        try:
            self.current_cpu()
            self.busy_seconds()
        except (OSError, ValueError, IndexError):
            return False
        return hasattr(os, "sched_setaffinity") and hasattr(time, "pthread_getcpuclockid")


class AutoAffinity:
    """``cpu_affinity="auto"``: keep the SDK's threads on one CPU while nothing else needs it.

    ``tick(now)`` runs on the I/O thread (often; it returns at once unless a step is due): the
    first tick pins every thread ``threads()`` returns to the CPU the I/O thread is on; every
    ``window`` seconds after that, CPU time on that CPU not spent by those threads is "foreign";
    above ``foreign_limit`` of the window the threads are released to all the process's CPUs
    and pinned again after the cool-down.
    """

    def __init__(
        self,
        threads: Threads,
        *,
        probe: Optional[CpuProbe] = None,
        window: float = 2.0,
        foreign_limit: float = 0.25,
        cooldown: float = 10.0,
        max_cooldown: float = 300.0,
    ) -> None:
        self._threads = threads
        self._probe = probe or CpuProbe()
        self._window = window
        self._limit = foreign_limit
        self._cooldown = cooldown
        self._max_cooldown = max_cooldown
        self._allowed = frozenset(os.sched_getaffinity(0))
        self._due = 0.0
        self._busy0 = 0.0
        self._ours0 = 0.0
        self.cpu: Optional[int] = None  # the CPU the threads are pinned to, None when released
        self._pinned: Set[Optional[int]] = set()  # idents of the threads pinned there
        self.releases = 0  # times contention made it let go

    @classmethod
    def create(cls, threads: Threads) -> Optional[AutoAffinity]:
        """An instance where it can work (Linux, /proc, two CPUs or more), else None."""
        if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
            return None
        if not CpuProbe().usable():
            return None
        return cls(threads)

    def stats(self) -> Dict[str, object]:
        return {"mode": "auto", "cpu": self.cpu, "releases": self.releases}

    def tick(self, now: float) -> None:
        if now < self._due:
            return
        try:
            if self.cpu is None:
                self._pin(now)
            else:
                self._check(now)
        except (OSError, ValueError, IndexError, KeyError) as exc:  # /proc changed under us
            log.warning("cpu_affinity auto: giving up (%s)", exc)
            self._release()
            self._due = float("inf")

    def _live(self) -> List[threading.Thread]:
        return [t for t in self._threads() if t is not None and t.is_alive()]

    def _ours(self, threads: List[threading.Thread]) -> float:
        total = 0.0
        for thread in threads:
            with contextlib.suppress(OSError, ValueError):  # exited since the check
                total += self._probe.thread_seconds(thread)
        return total

    def _pin(self, now: float) -> None:
        cpu = self._probe.current_cpu()
        threads = self._live()
        pin_threads(frozenset([cpu]), threads)
        self._pinned = {t.ident for t in threads}
        self.cpu = cpu
        self._busy0 = self._probe.busy_seconds()[cpu]
        self._ours0 = self._ours(threads)
        self._due = now + self._window
        log.debug("cpu_affinity auto: SDK threads on CPU %d", cpu)

    def _check(self, now: float) -> None:
        assert self.cpu is not None
        threads = self._live()
        busy = self._probe.busy_seconds()[self.cpu]
        ours = self._ours(threads)
        elapsed = self._window + (now - self._due)
        foreign = (busy - self._busy0) - (ours - self._ours0)
        if foreign > self._limit * elapsed:
            log.info(
                "cpu_affinity auto: CPU %d is %.0f%% busy with other work; releasing the SDK's "
                "threads for %.0f s",
                self.cpu,
                100 * foreign / elapsed,
                self._cooldown,
            )
            self._release()
            self.releases += 1
            self._due = now + self._cooldown
            self._cooldown = min(self._cooldown * 2, self._max_cooldown)
            return
        self._busy0, self._ours0 = busy, ours
        self._due = now + self._window
        fresh = [t for t in threads if t.ident not in self._pinned]
        if fresh:  # e.g. a connection the pool opened since: it follows the others
            pin_threads(frozenset([self.cpu]), fresh)
            self._pinned.update(t.ident for t in fresh)

    def _release(self) -> None:
        if self.cpu is not None:
            pin_threads(self._allowed, self._live())
            self.cpu = None
