"""The ``dydx-ws`` command line; each sub-command lives in its own module and registers here."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Callable, List, Optional

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> List[Register]:
    # Imported when the CLI runs, so ``import dydx_ws`` never pays for the CLI's modules.
    from ._commands import register as register_commands
    from ._emulator import register as register_emulator

    return [register_commands, register_emulator]


def _version() -> str:
    from .. import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dydx-ws", description="Live dYdX v4 Indexer data from the terminal."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _registrations():
        register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(int(args.verbose), 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM ends a command like Ctrl-C does: threads stopped, files (gzip recordings) closed.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
