"""``dydx-ws emulator``: run a local Indexer emulator until Ctrl-C and print its URLs.

``--markets`` takes comma-separated tickers or a count (``--markets 300``: a mainnet-sized list).
Bad arguments (a port out of range or in use, an invalid ticker, a market count out of 1-5000,
a block time that is not positive) and a missing ``emulator`` extra end the command with one line
on stderr and exit 2, like the other commands.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from typing import Any, List, Union

EXIT_USAGE = 2
MAX_MARKETS = 5000  # as dydx_ws.emulator.tickers (not imported: it needs no emulator extra)
_TICKER = re.compile(r"^[A-Z0-9]+(?:,[A-Z0-9]+)?-[A-Z0-9]+$")
MISSING_EXTRA = (
    "the emulator needs the 'emulator' extra (the websockets package): "
    "pip install 'dydx_ws[emulator]'"
)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _markets(text: str) -> Union[int, List[str]]:
    """``--markets``: a count (``300``: the emulator's mainnet-sized list) or comma-separated
    tickers."""
    if text.strip().isdigit():
        count = int(text)
        if not 1 <= count <= MAX_MARKETS:
            raise argparse.ArgumentTypeError(f"a market count is 1-{MAX_MARKETS}, got {count}")
        return count
    tickers = [m.strip() for m in text.split(",") if m.strip()]
    if not tickers:
        raise argparse.ArgumentTypeError("expected at least one ticker, e.g. BTC-USD")
    for ticker in tickers:
        if not _TICKER.match(ticker):
            hint = f" (did you mean {ticker.upper()!r}?)" if _TICKER.match(ticker.upper()) else ""
            raise argparse.ArgumentTypeError(
                f"not a perpetual ticker: {ticker!r}{hint}; tickers look like BTC-USD"
            )
    return tickers


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run a local dYdX Indexer emulator (WebSocket + REST)",
        description=(
            "Serve a simulated dYdX v4 Indexer (WebSocket and REST, seeded markets and a demo "
            "account) on 127.0.0.1 until Ctrl-C."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--port", type=_port, default=0, metavar="N", help="WebSocket port (0: any free port)"
    )
    parser.add_argument(
        "--rest-port",
        type=_port,
        default=None,
        metavar="N",
        help="REST port (default: --port + 1, or any free port with --port 0)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--markets",
        type=_markets,
        default="BTC-USD,ETH-USD",
        metavar="TICKERS|N",
        help="comma-separated tickers, or a count (e.g. 300: a mainnet-sized list)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the market simulator")
    parser.add_argument(
        "--block-time", type=_seconds, default=1.0, metavar="S", help="seconds per block"
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds between the server's pings",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds a client has to answer a ping before it is closed (1011)",
    )
    parser.add_argument(
        "--crossed-levels", action="store_true", help="inject stale crossed levels now and then"
    )
    parser.add_argument(
        "--silent-deletions", action="store_true", help="delete levels silently now and then"
    )
    parser.set_defaults(func=run)


def _fail(text: str) -> int:
    sys.stderr.write(f"dydx-ws emulator: error: {text}\n")
    return EXIT_USAGE


def run(args: Any) -> int:
    try:
        from ..emulator.server import IndexerEmulator
    except ModuleNotFoundError as exc:
        if exc.name != "websockets":
            raise
        return _fail(MISSING_EXTRA)

    rest_port = args.rest_port
    if rest_port is None:
        rest_port = args.port + 1 if args.port else 0
    if rest_port > 65535:
        return _fail(f"--port {args.port} leaves no REST port: give --rest-port")
    try:
        emulator = IndexerEmulator(
            markets=args.markets,
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
    except (ValueError, RuntimeError, OSError) as exc:  # e.g. "address already in use"
        text = str(exc).removeprefix("emulator failed to start: ")
        return _fail(f"cannot start the emulator: {text}")
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
