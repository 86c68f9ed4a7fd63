"""End-to-end receive throughput: a bare ``WebSocketApp`` vs ``DydxWebSocketClient``.

Run: ``python bench/throughput.py`` (``--quick`` for a short run). A flood server in a separate
process (a minimal RFC 6455 server that writes pre-encoded frames with one ``sendall``, so it is
never the bottleneck and never competes for this process's GIL) answers a subscribe with a
``subscribed`` frame and N ``channel_data`` frames. Side by side, in one run, it measures messages
per second seen by a user callback for:

(a) a bare ``websocket.WebSocketApp`` with ``json.loads`` in ``on_message``: what the official dYdX
    Python client does (``run_forever`` defaults, dict messages, callbacks on the I/O thread);
(b) ``DydxWebSocketClient``: typed messages decoded on the I/O thread and delivered through the
    worker pool to the callback, with orjson when the ``fast`` extra is there: first with the
    opt-in ``cpu_affinity="auto"``, then the standard library's ``json`` instead, then the
    default ``cpu_affinity=None`` (threads left to the operating system's placement).

for small order book updates and ~1.5 KB subaccount updates. This machine class is shared and
noisy (±30% between runs), so every column runs once per round, in a rotating order, over
``--rounds`` rounds (default 5), and medians are compared; the per-round ratios show the spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import websocket  # noqa: E402
from _wire import Workload, start_server  # noqa: E402

from dydx_ws import DydxWebSocketClient  # noqa: E402
from dydx_ws.engine._cpu_placement import AutoAffinity  # noqa: E402
from dydx_ws.protocol import _json as json_backend  # noqa: E402

ADDRESS = "dydx1kzsvkf2ghjqlysuffdkhcdctknl4rsvcx5hkm5"


class Meter:
    """Counts callback deliveries; the clock runs from the snapshot to the last update."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.t0 = 0.0
        self.t1 = 0.0
        self.done = threading.Event()

    def hit(self) -> None:
        if self.count == 0:
            self.t0 = time.perf_counter()
        self.count += 1
        if self.count == self.n + 1:
            self.t1 = time.perf_counter()
            self.done.set()

    @property
    def rate(self) -> float:
        return self.n / (self.t1 - self.t0)


def run_bare(port: int, n: int, sub: Dict[str, Any]) -> float:
    meter = Meter(n)

    def on_message(ws: Any, data: str) -> None:
        json.loads(data)
        meter.hit()

    def on_open(ws: Any) -> None:
        ws.send(json.dumps({"type": "subscribe", **sub}))

    app = websocket.WebSocketApp(f"ws://127.0.0.1:{port}", on_open=on_open, on_message=on_message)

    def on_message_wrapper(ws: Any, data: str) -> None:
        if data.startswith('{"type":"connected"'):
            return
        on_message(ws, data)

    app.on_message = on_message_wrapper
    thread = threading.Thread(target=app.run_forever, name="bench-bare", daemon=True)
    thread.start()
    if not meter.done.wait(300):
        raise RuntimeError("bare client did not finish")
    app.close()
    thread.join(5)
    return meter.rate


Config = Tuple[Callable[[Any], Any], Any]  # (JSON loads, cpu_affinity)


def run_sdk(port: int, n: int, sub: Dict[str, Any], workers: int, config: Config) -> float:
    loads, cpu = config
    installed = json_backend.loads
    json_backend.loads = loads
    try:
        return _run_sdk(port, n, sub, workers, cpu)
    finally:
        json_backend.loads = installed


def _run_sdk(port: int, n: int, sub: Dict[str, Any], workers: int, cpu: Any = "auto") -> float:
    meter = Meter(n)
    client = DydxWebSocketClient(
        url=f"ws://127.0.0.1:{port}", workers=workers, ping_interval=0, cpu_affinity=cpu
    )
    subscribe: Callable[..., Any]
    if sub["channel"] == "v4_orderbook":
        subscribe = lambda cb: client.subscribe_orderbook(sub["id"], cb)  # noqa: E731
    else:
        subscribe = lambda cb: client.subscribe_subaccount(ADDRESS, 0, cb)  # noqa: E731
    subscribe(lambda msg: meter.hit())
    client.start()
    try:
        if not meter.done.wait(300):
            raise RuntimeError("SDK client did not finish")
    finally:
        client.stop()
    return meter.rate


def configs() -> List[Tuple[str, Optional[Config]]]:
    """(a) first, then the SDK as installed, then one change at a time."""
    default = json_backend.BACKEND
    out: List[Tuple[str, Optional[Config]]] = [
        ("(a) bare WebSocketApp", None),
        (f"(b) SDK, cpu_affinity='auto' [{default}]", (json_backend.loads, "auto")),
    ]
    if default == "orjson":
        out.append(("(b) json instead", (json_backend.stdlib_loads, "auto")))
    else:
        print("orjson is not installed (pip install -e '.[fast]'): the SDK uses json")
    if AutoAffinity.create(lambda: []) is not None:
        out.append(("(b) cpu_affinity=None (default)", (json_backend.loads, None)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 5x fewer messages")
    parser.add_argument("--rounds", type=int, help="rounds (default 5; --quick 2)")
    args = parser.parse_args()
    quick = args.quick
    rounds = args.rounds or (2 if quick else 5)
    plans = [("book", 20_000 if quick else 100_000), ("account", 5_000 if quick else 20_000)]
    plan = configs()
    print(
        f"{rounds} rounds; each round runs every column once, in a rotating order; "
        "medians over rounds (b/a: ratio of the medians; the spread of per-round ratios below)"
    )
    head = f"{'workload':34}"
    for name, config in plan:
        head += f" {name:>26}" + (f" {'b/a':>6}" if config is not None else "")
    print(head)
    for kind, n in plans:
        work = Workload(kind)
        size, sub = work.size, {"channel": work.subscribe["channel"], "id": work.subscribe["id"]}
        rates: Dict[str, List[float]] = {name: [] for name, _ in plan}
        for r in range(rounds):
            order = plan[r % len(plan) :] + plan[: r % len(plan)]
            for name, config in order:
                proc, port = start_server(kind, n)
                try:
                    rate = (
                        run_bare(port, n, sub)
                        if config is None
                        else run_sdk(port, n, sub, 1, config)
                    )
                finally:
                    proc.join(10)
                    if proc.is_alive():
                        proc.terminate()
                rates[name].append(rate)
        label = f"{'order book update' if kind == 'book' else 'subaccount update'} ({size} B) x{n}"
        bare = rates[plan[0][0]]
        line = f"{label:34}"
        for name, config in plan:
            med = statistics.median(rates[name])
            line += f" {med:20,.0f} msg/s"
            if config is not None:
                line += f" {med / statistics.median(bare):5.2f}x"
        print(line)
        for name, _config in plan[1:]:
            ratios = [b / a for a, b in zip(bare, rates[name])]
            print(f"{'':34}   {name}: per-round b/a {min(ratios):.2f}x-{max(ratios):.2f}x")
    print("targets: b/a >= 2x on small frames, >= 10x on 1.5 KB frames")


if __name__ == "__main__":
    main()
