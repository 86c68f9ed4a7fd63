"""Where the time goes: a per-stage profile of each client on the loopback flood.

Run: ``python bench/stages.py`` (``--quick`` for a short run; ``--clients sdk,reference``;
``--kinds book,account``). Needs the ``dev`` extra (``py-spy``, ``msgspec``, ``websockets``).

Each client of bench/_clients.py runs in a fresh process under ``py-spy record --gil``, which
samples only the thread holding the GIL, i.e. the Python work the process does one thread at a
time. Every sample is put in the stage of the deepest frame of its stack that a rule of ``STAGES``
claims (the transport, JSON, typed models, envelope, routing, hand-off, local state, delivery,
the user's callback, ...); samples of start-up (imports) are left out. A stage's µs per message is
its share of the samples times the process CPU time per message the client measured itself (from
its first update to its last); what the GIL-holding samples cannot see (system calls and waits
with the GIL released) is part of the CPU time and so spread over the stages.

The ``models in C`` lines time the largest stage on 1.6 KB frames, decoding, on one thread and
the same frame: the SDK's ``decode_message`` (JSON, envelope, generated Python decoders) against
``msgspec`` decoding into the reference's typed Structs (the same fields, ``Decimal``, aware
``datetime``): what a C-level decoder would save.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import timeit
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _wire import Workload, start_server

# (stage, substrings of a py-spy frame "function (file:line)"): the deepest frame of a stack
# that matches a rule names the sample's stage; rules are tried in this order for each frame.
STAGES: List[Tuple[str, Tuple[str, ...]]] = [
    ("user callback", ("on_message (_clients.py", "Probe.hit")),
    ("freeing handled items", ("_free_finished",)),
    ("local state", ("dydx_ws/state/",)),
    ("delivery to callbacks", ("dydx_ws/engine/_worker_side.py", "dydx_ws/events.py")),
    ("hand-off (worker pool)", ("dydx_ws/engine/_worker_pool.py",)),
    ("JSON parse", ("dydx_ws/protocol/_json.py",)),
    ("typed models", ("<dydx_ws generated decoder", "_Channels.", "dydx_ws/protocol/_decoders.py")),
    ("envelope and message", ("dydx_ws/protocol/", "dydx_ws/models/")),
    ("routing", ("dydx_ws/engine/",)),
    ("framing and socket", ("dydx_ws/transport/", "websocket/", "selectors.py", "socket.py")),
    ("websockets framing", ("websockets/",)),
    ("asyncio loop", ("asyncio/",)),
    ("msgspec decode + loop", (".main (_clients.py",)),
]
NATIVE = "native (no Python frame)"
STARTUP = ("_find_and_load", "<module>", "_bootstrap_external")


def stage_of(frames: List[str]) -> Optional[str]:
    """The stage of one sample (its frames, outermost first); None for start-up samples."""
    if any(s in f for f in frames for s in STARTUP):
        return None
    for frame in reversed(frames):
        for stage, marks in STAGES:
            if any(m in frame for m in marks):
                return stage
    return "other"


def aggregate(raw: str) -> Counter[str]:
    """Samples per stage from py-spy's ``--format raw`` output (``thread;frame;... count``).

    A sample without a Python frame is native code: on the main thread (which only starts and
    joins the measured one, see ``_child``) interpreter start-up and exit, left out; elsewhere
    it counts as ``native (no Python frame)``."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        thread, *frames = stack.split(";")
        if frames:
            stage = stage_of(frames)
        else:
            stage = None if "MainThread" in thread or ":" not in thread else NATIVE
        if stage is not None:
            counts[stage] += int(n)
    return counts


def _child(name: str, kind: str, port: int, n: int, out: str) -> None:
    import threading

    from _clients import RUNNERS

    def run() -> None:
        result = RUNNERS[name](port, n, Workload(kind).subscribe, 300.0)
        Path(out).write_text(json.dumps(result))

    # Off the main thread: py-spy 0.4 does not see the main thread hold the GIL (Python 3.11).
    thread = threading.Thread(target=run, name=f"bench-{name}")
    thread.start()
    thread.join()


def profile(
    py_spy: str, name: str, kind: str, n: int, rate: int
) -> Tuple[Dict[str, Any], Counter[str]]:
    """Run one client against a flood server under py-spy: its own result and samples/stage."""
    server, port = start_server(kind, n)
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = os.path.join(tmp, "raw.txt"), os.path.join(tmp, "result.json")
        cmd = [py_spy, "record", "--gil", "--threads", "-r", str(rate), "-f", "raw", "-o", raw]
        cmd += ["--", sys.executable, __file__, "--child", name, kind, str(port), str(n), out]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        finally:
            server.join(10)
            if server.is_alive():
                server.terminate()
        return json.loads(Path(out).read_text()), aggregate(Path(raw).read_text())


def report(name: str, kind: str, result: Dict[str, Any], counts: Counter[str]) -> None:
    total = sum(counts.values())
    cpu = result["cpu_us"]
    print(f"\n{name}, {kind}: {result['rate']:,.0f} msg/s, CPU {cpu:.1f} us/msg, {total} samples")
    for stage, k in counts.most_common():
        print(f"  {stage:24} {k / total * 100:5.1f}%  {k / total * cpu:6.2f} us/msg")


def models_in_c(quick: bool) -> None:
    """The typed-models step of a 1.6 KB subaccount frame: generated decoders vs msgspec."""
    import msgspec
    from _clients import _reference_types

    from dydx_ws.protocol._decode import decode_message
    from dydx_ws.protocol._json import loads

    work = Workload("account")
    text = work.update(2)[4:]
    (_, _), (account_decoder, _) = _reference_types()
    number = 2_000 if quick else 20_000

    def best(fn: Any) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6

    sdk = best(lambda: decode_message(text))
    parse = best(lambda: loads(text))
    ref = best(lambda: account_decoder.decode(text))
    plain = best(lambda: msgspec.json.decode(text))
    print(f"\nmodels in C, subaccount update ({len(text)} B), one thread, best of 5:")
    print(f"  SDK decode_message (JSON + envelope + generated decoders) {sdk:6.2f} us/frame")
    print(f"    of it JSON parse (installed backend)                     {parse:6.2f} us/frame")
    print(f"  msgspec into typed Structs (Decimal, datetime)             {ref:6.2f} us/frame")
    print(f"    of it JSON parse (msgspec, untyped)                      {plain:6.2f} us/frame")
    print(f"  a C-level decoder would save ~{sdk - ref:.1f} us per frame of the SDK's CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", default="sdk,reference")
    parser.add_argument("--kinds", default="book,account")
    parser.add_argument("--rate", type=int, default=400, help="py-spy samples per second")
    parser.add_argument("--messages", type=int, help="updates per run (default by frame size)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, kind, port, n, out = args.child
        _child(name, kind, int(port), int(n), out)
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(py_spy):
        sys.exit("bench/stages.py needs py-spy (pip install -e '.[dev]')")
    sizes = {"book": 60_000, "account": 15_000}
    if not args.quick:
        sizes = {"book": 400_000, "account": 80_000}
    for kind in args.kinds.split(","):
        for name in args.clients.split(","):
            n = args.messages or sizes[kind]
            report(name, kind, *profile(py_spy, name, kind, n, args.rate))
    models_in_c(args.quick)


if __name__ == "__main__":
    main()
