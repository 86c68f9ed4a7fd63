"""``dydx-ws emulator``: run a local Indexer emulator until Ctrl-C and print its URLs."""

from __future__ import annotations

import argparse
import threading
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run a local dYdX Indexer emulator (WebSocket + REST)",
        description="Serve a simulated dYdX v4 Indexer on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=0, help="WebSocket port (0 = any free port)")
    parser.add_argument(
        "--rest-port",
        type=int,
        default=None,
        help="REST port (default: --port + 1, or any free port)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--markets", default="BTC-USD,ETH-USD", help="comma-separated tickers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-time", type=float, default=1.0, help="seconds per block")
    parser.add_argument("--heartbeat-interval", type=float, default=30.0)
    parser.add_argument("--heartbeat-timeout", type=float, default=10.0)
    parser.add_argument(
        "--crossed-levels", action="store_true", help="inject stale crossed levels now and then"
    )
    parser.add_argument(
        "--silent-deletions", action="store_true", help="delete levels silently now and then"
    )
    parser.set_defaults(func=run)


def run(args: Any) -> int:
    from .server import IndexerEmulator

    rest_port = args.rest_port
    if rest_port is None:
        rest_port = args.port + 1 if args.port else 0
    emulator = IndexerEmulator(
        markets=[m.strip() for m in args.markets.split(",") if m.strip()],
        seed=args.seed,
        host=args.host,
        port=args.port,
        block_time=args.block_time,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_timeout=args.heartbeat_timeout,
        rest_port=rest_port,
        crossed_levels=args.crossed_levels,
        silent_deletions=args.silent_deletions,
    )
    emulator.start()
    print(f"WebSocket: {emulator.ws_url}")
    print(f"REST:      {emulator.rest_url}")
    print(f"Demo account: {emulator.demo_address} (subaccounts 0 and 128)")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
