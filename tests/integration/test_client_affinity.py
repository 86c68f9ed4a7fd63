"""``cpu_affinity``: the SDK's own threads (I/O, workers, drift repair) are pinned where asked,
other threads are not, and a bad value is refused before anything starts."""

from __future__ import annotations

import os
import threading

import pytest
from support import Recorder

from dydx_ws import DydxWebSocketClient
from dydx_ws.emulator import IndexerEmulator


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


@pytest.mark.parametrize("bad", [[], [True], ["0"], [10_000], 10_000, -1])
def test_a_cpu_the_process_cannot_use_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="cpu_affinity"):
        DydxWebSocketClient(url="ws://127.0.0.1:9", cpu_affinity=bad)  # type: ignore[arg-type]
