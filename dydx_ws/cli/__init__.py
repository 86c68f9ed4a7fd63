"""The ``dydx-ws`` console script: ``main`` parses the command line; each command is a module."""

from ._main import main

__all__ = ["main"]
