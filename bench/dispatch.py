"""Hand-off cost of the dispatcher: items/s for direct calls, queue.Queue, and Dispatcher(1/2/4).

One producer submits N items over 200 keys as fast as it can; the clock stops when the last
item has been handled (end to end). Workloads: "trivial" (a no-op handler: pure hand-off cost),
"decode" (the producer also json.loads a 330-byte order book frame per item, as the I/O
thread does, so the ratio vs direct is the realistic one), and "io5%", a handler that sleeps
1 ms on 5% of the items, spread over all keys (blocking I/O such as a database write).
"overhead" is the hand-off cost per item: 1/rate - 1/direct-rate.

    /work/venv/bin/python bench/dispatch.py [--items 200000] [--io-items 200000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from typing import Callable, Dict, Hashable, List, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dydx_ws.dispatch import Dispatcher, OverflowPolicy

KEYS = [("v4_trades", f"M{i}-USD") for i in range(200)]
Handler = Callable[[Hashable, object], None]


def trivial_handler(key: Hashable, item: object) -> None:
    pass


def io_handler(key: Hashable, item: object) -> None:
    i: int = item  # type: ignore[assignment]
    if (i + i // len(KEYS)) % 20 == 0:  # 5% of items, spread evenly over the keys
        time.sleep(0.001)


FRAME = json.dumps(
    {
        "type": "channel_data",
        "connection_id": "8f1e2c3a-0000-4000-8000-000000000000",
        "message_id": 1234,
        "id": "BTC-USD",
        "channel": "v4_orderbook",
        "version": "1.0.0",
        "contents": {"bids": [["114250", "0.5"], ["114249", "0"]], "asks": [["114262", "1.25"]]},
    }
)


def run_direct(handler: Handler, n: int, decode: bool = False) -> float:
    keys = KEYS
    nk = len(keys)
    loads = json.loads
    t0 = time.perf_counter()
    if decode:
        for i in range(n):
            loads(FRAME)
            handler(keys[i % nk], i)
    else:
        for i in range(n):
            handler(keys[i % nk], i)
    return time.perf_counter() - t0


def run_queue(handler: Handler, n: int, decode: bool = False) -> float:
    q: queue.Queue[Optional[Tuple[Hashable, int]]] = queue.Queue(maxsize=10_000)

    def worker() -> None:
        while True:
            entry = q.get()
            if entry is None:
                return
            handler(entry[0], entry[1])

    thread = threading.Thread(target=worker, name="bench-queue-worker")
    keys = KEYS
    nk = len(keys)
    loads = json.loads
    thread.start()
    t0 = time.perf_counter()
    for i in range(n):
        if decode:
            loads(FRAME)
        q.put((keys[i % nk], i))
    q.put(None)
    thread.join()
    return time.perf_counter() - t0


def run_dispatcher(handler: Handler, n: int, workers: int, decode: bool = False) -> float:
    done = threading.Event()
    remaining = [len(KEYS)]
    lock = threading.Lock()

    def countdown() -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    d = Dispatcher(
        handler,
        workers=workers,
        overflow=OverflowPolicy.BLOCK,
        block_timeout=60.0,
    )
    d.start()
    keys = KEYS
    nk = len(keys)
    submit = d.submit
    loads = json.loads
    t0 = time.perf_counter()
    for i in range(n):
        if decode:
            loads(FRAME)
        submit(keys[i % nk], i)
    for key in keys:  # runs after every item already queued on that key's worker
        d.call_soon(key, countdown)
    d.flush()
    if not done.wait(300):
        raise RuntimeError("dispatcher did not drain")
    elapsed = time.perf_counter() - t0
    stats = d.stats()
    if not d.stop(5.0):
        raise RuntimeError("dispatcher did not stop")
    if stats["processed"] != n or stats["dropped"]:
        raise RuntimeError(f"lost items: {stats}")
    return elapsed


def best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--io-items", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs")
    args = parser.parse_args()

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, switch interval "
        f"{sys.getswitchinterval() * 1000:.0f} ms, {len(KEYS)} keys, best of {args.repeat}"
    )
    rates: Dict[str, Dict[str, float]] = {}
    workloads = [
        ("trivial", trivial_handler, args.items, False),
        ("decode", trivial_handler, args.items, True),
        ("io5%", io_handler, args.io_items, False),
    ]
    for label, handler, n, dec in workloads:
        cases: List[Tuple[str, Callable[[], float]]] = [
            ("direct call", lambda h=handler, n=n, dec=dec: run_direct(h, n, dec)),
            ("queue.Queue 1 worker", lambda h=handler, n=n, dec=dec: run_queue(h, n, dec)),
        ]
        for workers in (1, 2, 4):
            cases.append(
                (
                    f"Dispatcher workers={workers}",
                    lambda h=handler, n=n, w=workers, dec=dec: run_dispatcher(h, n, w, dec),
                )
            )
        rates[label] = {}
        for name, fn in cases:
            rates[label][name] = n / best(fn, args.repeat)

    names = list(rates["trivial"])
    print(
        f"\n{'case':<24}{'trivial/s':>11}{'vs direct':>10}{'overhead':>11}"
        f"{'decode/s':>11}{'vs direct':>10}{'io5%/s':>9}{'vs direct':>10}"
    )
    direct = {label: r["direct call"] for label, r in rates.items()}
    for name in names:
        t, dc, io = rates["trivial"][name], rates["decode"][name], rates["io5%"][name]
        overhead_us = (1 / t - 1 / direct["trivial"]) * 1e6
        print(
            f"{name:<24}{t:>11,.0f}{t / direct['trivial']:>9.2f}x{overhead_us:>8.2f} us"
            f"{dc:>11,.0f}{dc / direct['decode']:>9.2f}x"
            f"{io:>9,.0f}{io / direct['io5%']:>9.2f}x"
        )

    cpu = {w: rates["trivial"][f"Dispatcher workers={w}"] for w in (1, 2, 4)}
    io = {w: rates["io5%"][f"Dispatcher workers={w}"] for w in (1, 2, 4)}
    # Smallest pool that gets >= 90% of the best blocking-I/O rate without losing more than
    # 30% of the single-worker CPU-bound rate.
    best_io = max(io.values())
    choice = next((w for w in (1, 2, 4) if io[w] >= 0.9 * best_io and cpu[w] >= 0.7 * cpu[1]), 1)
    print(
        f"\nrecommendation: workers={choice} "
        f"(CPU-bound: {', '.join(f'{w}w {cpu[w] / cpu[1]:.2f}x' for w in cpu)} of 1 worker; "
        f"blocking I/O: {', '.join(f'{w}w {io[w] / io[1]:.2f}x' for w in io)} of 1 worker)"
    )


if __name__ == "__main__":
    main()
