"""bench/stages.py's attribution of py-spy samples to stages (pure logic, on raw lines)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from stages import NATIVE, aggregate, stage_of


def test_the_deepest_claimed_frame_names_the_stage() -> None:
    io = [
        "Connection._serve (dydx_ws/transport/_connection.py:500)",
        "Router.on_frame (dydx_ws/engine/_io_side.py:296)",
        "decode_message (dydx_ws/protocol/_decode.py:503)",
        "_orjson_loads.<locals>.loads (dydx_ws/protocol/_json.py:30)",
    ]
    assert stage_of(io) == "JSON parse"
    assert stage_of(io[:3]) == "envelope and message"
    assert stage_of(io[:2]) == "routing"
    assert stage_of(io[:1]) == "framing and socket"
    worker = [
        "Dispatcher._run (dydx_ws/engine/_worker_pool.py:530)",
        "Delivery.__call__ (dydx_ws/engine/_worker_side.py:60)",
        "run_sdk.<locals>.on_message (_clients.py:95)",
        "Probe.hit (_clients.py:57)",
    ]
    assert stage_of(worker) == "user callback"
    assert stage_of(worker[:2]) == "delivery to callbacks"
    assert stage_of(["Thread.run (threading.py:982)"]) == "other"


def test_start_up_and_main_thread_samples_are_left_out() -> None:
    raw = "\n".join(
        [
            "thread (1): dydx-ws-io;Router.on_frame (dydx_ws/engine/_io_side.py:296) 7",
            "thread (1): dydx-ws-io;<module> (x.py:1);_find_and_load (<frozen>:1) 5",
            "thread (2): MainThread 4",
            "thread (2) 3",
            "thread (3): dydx-ws-worker-0 2",
            "not a sample line",
        ]
    )
    assert aggregate(raw) == {"routing": 7, NATIVE: 2}
