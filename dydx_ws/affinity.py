"""Optional CPU pinning of the SDK's own threads (Linux).

The I/O thread and the workers never run Python at the same time (they share the GIL), but the
operating system spreads them over cores, so every message the I/O thread builds is read and freed
on another core. Keeping them on one core avoids that traffic: ``bench/throughput.py`` measured
+31% and +59% messages/s on 1.6 KB frames in two runs. The cost: C code that releases the GIL
(TLS decryption, numpy in a callback) no longer runs beside the SDK's Python on another core.
Opt-in for that reason (``DydxWebSocketClient(cpu_affinity=...)``).
"""

from __future__ import annotations

import os
import threading
from typing import FrozenSet, Iterable, Optional, Union

__all__ = ["CpuSpec", "parse_cpus", "pin_threads"]

CpuSpec = Union[int, Iterable[int]]


def parse_cpus(spec: Optional[CpuSpec]) -> Optional[FrozenSet[int]]:
    """Validate a ``cpu_affinity`` argument: None, a CPU number or CPU numbers this process may
    use. Raises ``ValueError`` where threads cannot be pinned (not Linux) or a CPU is not ours."""
    if spec is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("cpu_affinity needs os.sched_setaffinity (Linux)")
    cpus = frozenset([spec] if isinstance(spec, int) else spec)
    if not cpus or not all(isinstance(c, int) and not isinstance(c, bool) for c in cpus):
        raise ValueError(f"cpu_affinity must be a CPU number or CPU numbers, got {spec!r}")
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
            os.sched_setaffinity(thread.native_id, cpus)
