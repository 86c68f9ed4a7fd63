"""A local dYdX v4 Indexer emulator (socks WebSocket + comlink REST) for offline tests.

It writes raw JSON exactly as the real server does and never imports the client's models.
``IndexerEmulator`` is imported lazily so that ``dydx_ws.cli._emulator`` can be registered without
the optional ``websockets`` dependency being installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import EmulatorConfig
    from .server import IndexerEmulator

__all__ = ["EmulatorConfig", "IndexerEmulator"]


def __getattr__(name: str) -> Any:
    if name == "IndexerEmulator":
        try:
            from .server import IndexerEmulator
        except ModuleNotFoundError as exc:
            if exc.name != "websockets":
                raise
            raise ImportError(
                "dydx_ws.emulator needs the 'emulator' extra (the websockets package): "
                "pip install 'dydx_ws[emulator]'",
                name=exc.name,
            ) from exc

        return IndexerEmulator
    if name == "EmulatorConfig":
        from .config import EmulatorConfig

        return EmulatorConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
