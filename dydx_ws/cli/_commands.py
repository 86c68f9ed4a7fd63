"""The ``dydx-ws`` sub-commands: ``demo``, ``watch``, ``book``, ``record``, ``replay``, ``relay``,
``history``.

Each module has ``register(subparsers)`` (called from ``_main._registrations``) and a
``run(args) -> exit code``; :mod:`._common` holds the options, exit codes, channel parsing and the
output functions. ``rich`` (the ``cli`` extra) draws the live views when stdout is a terminal;
without a terminal (pipes, tests) every command prints plain lines instead.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register every command of this package."""
    from . import _book as book
    from . import _demo as demo
    from . import _history as history
    from . import _record as record
    from . import _relay as relay
    from . import _replay as replay
    from . import _watch as watch

    for module in (demo, watch, book, record, replay, relay, history):
        module.register(subparsers)
