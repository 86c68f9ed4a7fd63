"""``cpu_affinity``: the SDK's own threads (I/O, workers, drift repair) are pinned where asked,
other threads are not, and a bad value is refused before anything starts. The default (None)
leaves them to the operating system; ``"auto"`` pins them to one CPU once connected and lets go
when another program needs it. Pinning is awaited through ``stats()["cpu_affinity"]["cpu"]``,
which is set only after every SDK thread was pinned (all of them are alive before the I/O
thread's first tick), so the checks after it are deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List

import pytest

from dydx_ws import DydxWebSocketClient
from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import Recorder


def test_the_sdk_threads_run_on_the_given_cpu(emulator: IndexerEmulator) -> None:
    cpu = max(os.sched_getaffinity(0))
    everything = os.sched_getaffinity(0)
    rec = Recorder()
    client = DydxWebSocketClient(
        network=emulator.network, workers=2, cpu_affinity=cpu, check_interval=30
    )
    with client:
        client.subscribe_block_height(rec)
        rec.wait(lambda: rec.count() >= 2, 10)  # pinned threads still deliver
        mine = [t for t in threading.enumerate() if t.name.startswith("dydx-ws-")]
        names = {t.name for t in mine}
        assert {"dydx-ws-io", "dydx-ws-worker-0", "dydx-ws-worker-1", "dydx-ws-resync"} <= names
        for thread in mine:
            assert thread.native_id is not None
            assert os.sched_getaffinity(thread.native_id) == {cpu}, thread.name
        assert os.sched_getaffinity(threading.get_native_id()) == everything  # caller untouched


@pytest.mark.parametrize("bad", [[], [True], ["0"], [10_000], 10_000, -1, "fast", ""])
def test_a_cpu_the_process_cannot_use_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="cpu_affinity"):
        DydxWebSocketClient(url="ws://127.0.0.1:9", cpu_affinity=bad)  # type: ignore[arg-type]


def _sdk_thread_cpus() -> Dict[str, frozenset]:  # type: ignore[type-arg]
    return {
        t.name: frozenset(os.sched_getaffinity(t.native_id))
        for t in threading.enumerate()
        if t.name.startswith("dydx-ws-") and t.native_id is not None
    }


def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _pinned_cpu(client: DydxWebSocketClient) -> Any:
    cpu = client.stats()["cpu_affinity"]["cpu"]
    return None if cpu is None else (cpu,)  # truthy even for CPU 0


def test_auto_makes_the_sdk_threads_share_one_cpu_once_connected(
    emulator: IndexerEmulator,
) -> None:
    everything = frozenset(os.sched_getaffinity(0))
    rec = Recorder()
    client = DydxWebSocketClient(
        network=emulator.network, workers=2, check_interval=30, cpu_affinity="auto"
    )
    with client:
        client.subscribe_block_height(rec)
        rec.wait(lambda: rec.count() >= 2, 10)
        cpu = _until(lambda: _pinned_cpu(client), 10, "threads pinned")[0]
        assert client.stats()["cpu_affinity"] == {"mode": "auto", "cpu": cpu, "releases": 0}
        cpus = _sdk_thread_cpus()
        assert {"dydx-ws-io", "dydx-ws-worker-0", "dydx-ws-worker-1", "dydx-ws-resync"} <= set(cpus)
        assert set(cpus.values()) == {frozenset([cpu])}, cpus
        assert os.sched_getaffinity(threading.get_native_id()) == everything  # caller untouched


def test_auto_lets_go_when_another_program_needs_that_cpu(emulator: IndexerEmulator) -> None:
    everything = frozenset(os.sched_getaffinity(0))
    rec = Recorder()
    client = DydxWebSocketClient(
        network=emulator.network, workers=2, check_interval=None, cpu_affinity="auto"
    )
    with client:
        client.subscribe_block_height(rec)
        cpu = _until(lambda: _pinned_cpu(client), 10, "threads pinned")[0]
        hog = subprocess.Popen(  # a busy loop on the very CPU the SDK's threads are on
            [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile 1: pass"]
        )
        try:
            stats = _until(
                lambda: client.stats()["cpu_affinity"]["releases"] and client.stats(),
                15,
                "released under contention",
            )
            assert stats["cpu_affinity"]["cpu"] is None
            assert set(_sdk_thread_cpus().values()) == {everything}
            n = rec.count()
            rec.wait(lambda: rec.count() > n, 10)  # still delivering
        finally:
            hog.kill()
            hog.wait(10)


def test_by_default_scheduling_is_left_to_the_operating_system(
    emulator: IndexerEmulator,
) -> None:
    everything = frozenset(os.sched_getaffinity(0))
    rec = Recorder()
    client = DydxWebSocketClient(network=emulator.network, workers=2)
    with client:
        client.subscribe_block_height(rec)
        rec.wait(lambda: rec.count() >= 3, 10)
        assert client.stats()["cpu_affinity"] == {"mode": "off"}
        values: List[frozenset] = list(_sdk_thread_cpus().values())  # type: ignore[type-arg]
        assert values and set(values) == {everything}


@pytest.mark.parametrize("mode", ["fixed", "auto"])
def test_a_connection_the_pool_opens_later_runs_where_the_others_do(
    emulator: IndexerEmulator, mode: str
) -> None:
    fixed = max(os.sched_getaffinity(0))
    client = DydxWebSocketClient(
        network=emulator.network,
        workers=1,
        check_interval=None,
        cpu_affinity=fixed if mode == "fixed" else "auto",
        subscription_limits={"v4_trades": 1},
    )
    with client:
        first = client.subscribe_trades("BTC-USD")
        assert first.wait_subscribed(10)
        if mode == "auto":  # (released again if another program took that CPU meanwhile)
            cpu = _until(lambda: _pinned_cpu(client), 10, "threads pinned")[0]
        later = client.subscribe_trades("ETH-USD")  # past the limit: a second connection
        assert later.wait_subscribed(10) and later.connection == 1

        def same_place() -> bool:
            cpus = _sdk_thread_cpus()
            return "dydx-ws-io-1" in cpus and len(set(cpus.values())) == 1

        _until(same_place, 10, "the new connection's thread where the others are")
        if mode == "fixed":
            assert set(_sdk_thread_cpus().values()) == {frozenset([fixed])}
        elif client.stats()["cpu_affinity"]["releases"] == 0:
            assert set(_sdk_thread_cpus().values()) == {frozenset([cpu])}
