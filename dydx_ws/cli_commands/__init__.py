"""The ``dydx-ws`` sub-commands: ``demo``, ``watch``, ``book``, ``record``, ``replay``, ``relay``,
``history``.

Each module has ``register(subparsers)`` (called from :func:`dydx_ws.cli._registrations`) and a
``run(args) -> exit code``; :mod:`.common` holds the options, exit codes, channel parsing and the
output functions. ``rich`` (the ``cli`` extra) draws the live views when stdout is a terminal;
without a terminal (pipes, tests) every command prints plain lines instead.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register every command of this package."""
    from . import book, demo, history, record, relay, replay, watch

    for module in (demo, watch, book, record, replay, relay, history):
        module.register(subparsers)
