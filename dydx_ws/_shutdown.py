"""Stop the clients still running when the interpreter exits.

The SDK's threads are daemon threads, so a script that ends, raises or gets Ctrl-C without
``stop()`` (or ``with``) exits instead of hanging on them. Before the interpreter goes, an
``atexit`` hook stops every client still running (close code 1000, threads joined), bounded by
``EXIT_TIMEOUT`` in total; a Ctrl-C during that wait ends it at once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import TYPE_CHECKING, Set

if TYPE_CHECKING:
    from .client import DydxWebSocketClient

__all__ = ["EXIT_TIMEOUT", "forget", "remember", "stop_running_clients"]

log = logging.getLogger("dydx_ws._shutdown")

EXIT_TIMEOUT = 3.0  # seconds for every running client together
_lock = threading.Lock()
_running: Set[DydxWebSocketClient] = set()


def remember(client: DydxWebSocketClient) -> None:
    """``client`` was started: stop it at exit unless it is stopped before."""
    with _lock:
        _running.add(client)


def forget(client: DydxWebSocketClient) -> None:
    """``client`` was stopped."""
    with _lock:
        _running.discard(client)


def stop_running_clients(timeout: float = EXIT_TIMEOUT) -> None:
    """Stop every client still running, within ``timeout`` seconds in total."""
    with _lock:
        clients = list(_running)
    deadline = time.monotonic() + timeout
    try:
        for client in clients:
            client.stop(max(0.1, deadline - time.monotonic()))
    except KeyboardInterrupt:  # a second Ctrl-C: leave now (the threads are daemons)
        log.debug("interrupted while stopping clients at exit")


atexit.register(stop_running_clients)
