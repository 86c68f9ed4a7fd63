"""The SDK against the best hand-written alternative, on a flood and on block-shaped bursts.

Run: ``python bench/versus.py`` (``--quick`` for a short run; ``--rounds N``; ``--mode flood`` or
``--mode burst`` for one of the two). Needs the ``dev`` extra (``msgspec`` and ``websockets``).

Columns (bench/_clients.py): the SDK with its defaults, the hand-written reference (asyncio +
``websockets`` + ``msgspec`` typed structs), and a bare ``WebSocketApp`` + ``json.loads`` (what the
official client does). Each client runs in a fresh process against a one-connection server
process (bench/_wire.py), for small order book updates and ~1.6 KB subaccount updates.

- flood: every update in one write; messages/s seen by the callback.
- burst: the Indexer publishes per block, so updates come in bursts: ``--burst`` frames (500)
  every ``--interval`` s (0.25: 2,000 frames/s), each burst stamped with its write time. Reports
  process CPU time per message and latency from server write to callback (p50/p99/max).

This machine is shared and noisy, so every column runs once per round in a rotating order over
``--rounds`` rounds (default 5) and medians are compared; ratios are SDK / reference.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _clients import RUNNERS, Probe
from _wire import Workload, start_server

CLIENTS = ["sdk", "reference", "bare"]


def _child(
    name: str, port: int, n: int, sub: Dict[str, Any], timeout: float, alloc: bool, q: Any
) -> None:
    try:
        Probe.trace_allocations = alloc
        q.put(RUNNERS[name](port, n, sub, timeout))
    except BaseException as exc:
        q.put({"error": f"{type(exc).__name__}: {exc}"})


def run_once(
    name: str, kind: str, mode: str, n: int, burst: int, interval: float, alloc: bool = False
) -> Dict[str, Any]:
    work = Workload(kind)
    gap = 0.0 if mode == "flood" else interval
    server, port = start_server(kind, n, burst, gap)
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    timeout = 300.0 + n * gap / max(burst, 1)
    child = ctx.Process(target=_child, args=(name, port, n, work.subscribe, timeout, alloc, q))
    child.start()
    try:
        result: Dict[str, Any] = q.get(timeout=timeout + 30)
    finally:
        child.join(10)
        server.join(10)
        for proc in (child, server):
            if proc.is_alive():
                proc.terminate()
    if "error" in result:
        raise RuntimeError(f"{name} ({kind}, {mode}): {result['error']}")
    result["size"] = work.size
    return result


def _ratio(med: Dict[str, Dict[str, float]], key: str, a: str, b: str) -> str:
    if a in med and b in med:
        return f"{med[a][key] / med[b][key]:.2f}x"
    return "n/a"


def report(
    mode: str, med: Dict[str, Dict[str, float]], results: Dict[str, List[Dict[str, Any]]]
) -> None:
    for c, m in med.items():
        if mode == "flood":
            rates = [x["rate"] for x in results[c]]
            spread = f"rounds {min(rates):,.0f}-{max(rates):,.0f}"
            print(f"  {c:10} {m['rate']:>10,.0f} msg/s   ({spread})")
        else:
            print(
                f"  {c:10} CPU {m['cpu_us']:7.1f} us/msg   latency p50 {m['p50_ms']:6.2f}  "
                f"p99 {m['p99_ms']:6.2f}  max {m['max_ms']:7.2f} ms"
            )
    if mode == "flood":
        print(f"  sdk / reference throughput {_ratio(med, 'rate', 'sdk', 'reference')} (>= 0.7x)")
        print(f"  sdk / bare throughput {_ratio(med, 'rate', 'sdk', 'bare')} (>= 3x / >= 10x)")
    else:
        cpu = _ratio(med, "cpu_us", "sdk", "reference")
        p99 = _ratio(med, "p99_ms", "sdk", "reference")
        print(f"  sdk / reference: CPU per message {cpu} (<= 1.3x), p99 latency {p99} (<= 2x)")


def message_bytes(kind: str) -> Dict[str, float]:
    """Bytes one decoded update holds, per client's decoding (tracemalloc over 1,000 kept)."""
    import tracemalloc

    from _clients import _reference_types

    from dydx_ws.protocol._decode import decode_message

    text = Workload(kind).update(2)[4:]
    (book, _), (account, _) = _reference_types()
    decoders = {
        "sdk": decode_message,
        "reference": (book if kind == "book" else account).decode,
        "bare": json.loads,
    }
    sizes = {}
    for name, decode in decoders.items():
        decode(text)  # warm: caches and interned names are not the message's
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = [decode(text) for _ in range(1000)]
        sizes[name] = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
        tracemalloc.stop()
    return sizes


def memory(args: argparse.Namespace) -> None:
    """RSS over a long burst run (``--soak``) or tracemalloc figures (``--alloc``), per client."""
    for kind in ("book", "account"):
        sizes = {} if args.soak else message_bytes(kind)
        for name in args.clients.split(","):
            if args.soak:
                n = int(args.soak * args.burst / args.interval)
                r = run_once(name, kind, "burst", n, args.burst, args.interval)
                print(
                    f"soak {kind:7} {name:10} {n:,} updates over {args.soak:g} s: RSS "
                    f"{r['rss_start_mb']:.1f} MB at the first update, {r['rss_tenth_mb']:.1f} MB "
                    f"after a tenth, {r['rss_end_mb']:.1f} MB at the last"
                )
            else:
                n = args.messages or 10_000
                r = run_once(name, kind, "burst", n, args.burst, args.interval, alloc=True)
                print(
                    f"alloc {kind:7} {name:10} one decoded update holds {sizes[name]:,.0f} B; "
                    f"after {n:,} updates {r['retained_b'] * n / 1024:,.0f} KiB retained "
                    f"({r['retained_b']:.1f} B/update), tracemalloc peak {r['peak_kb']:,.0f} KiB"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--mode", choices=["flood", "burst", "both"], default="both")
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--messages", type=int, help="updates per run (default by mode and size)")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="one long burst run per client: RSS at the start, after a tenth, at the end",
    )
    parser.add_argument(
        "--alloc", action="store_true", help="tracemalloc per message (slow; not timed)"
    )
    args = parser.parse_args()
    if args.soak or args.alloc:
        memory(args)
        return
    rounds = args.rounds or (2 if args.quick else 5)
    clients = args.clients.split(",")
    modes = ["flood", "burst"] if args.mode == "both" else [args.mode]
    sizes = {
        "flood": {
            "book": 20_000 if args.quick else 100_000,
            "account": 5_000 if args.quick else 20_000,
        },
        "burst": {
            "book": 5_000 if args.quick else 20_000,
            "account": 5_000 if args.quick else 20_000,
        },
    }
    print(
        f"{rounds} rounds, columns in rotating order, medians; burst = {args.burst} frames every "
        f"{args.interval} s"
    )
    for mode in modes:
        for kind in ("book", "account"):
            n = args.messages or sizes[mode][kind]
            results: Dict[str, List[Dict[str, Any]]] = {c: [] for c in clients}
            for r in range(rounds):
                for name in clients[r % len(clients) :] + clients[: r % len(clients)]:
                    results[name].append(run_once(name, kind, mode, n, args.burst, args.interval))
            size = results[clients[0]][0]["size"]
            label = "order book update" if kind == "book" else "subaccount update"
            print(f"\n{mode}: {label} ({size} B) x{n}")
            med = {
                c: {
                    k: statistics.median(x[k] for x in results[c])
                    for k in results[c][0]
                    if k != "size"
                }
                for c in clients
            }
            report(mode, med, results)


if __name__ == "__main__":
    main()
