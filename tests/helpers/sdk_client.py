"""Helpers for client integration tests: a real emulator on loopback and small utilities.

The client under test talks to the emulator over real sockets through websocket-client; nothing of
our transport is mocked.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Callable, DefaultDict, Dict, List, Optional, Tuple, TypeVar

from dydx_ws import CandleResolution, DydxWebSocketClient, ReconnectPolicy
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.protocol._messages import Message

T = TypeVar("T")
FAST_EMULATOR = dict(block_time=0.05, batch_interval=0.1, warmup_blocks=60, close_timeout=0.5)
FAST_RECONNECT = ReconnectPolicy(
    initial_delay=0.02, max_delay=0.2, stable_after=0.5, rate_limited_delay=0.3
)


def sdk_threads() -> List[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("dydx-ws"))


class Recorder:
    """A callback that records messages per (channel, id) and lets tests wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.messages: DefaultDict[Tuple[Optional[str], Optional[str]], List[Message]] = (
            defaultdict(list)
        )
        self.threads: Dict[Tuple[Optional[str], Optional[str]], set] = defaultdict(set)  # type: ignore[type-arg]

    def __call__(self, msg: Message) -> None:
        with self._cond:
            self.messages[msg.key].append(msg)
            self.threads[msg.key].add(threading.current_thread().name)
            self._cond.notify_all()

    def count(self, key: Any = None, *, snapshots: Optional[bool] = None) -> int:
        with self._cond:
            keys = [key] if key is not None else list(self.messages)
            return sum(
                1
                for k in keys
                for m in self.messages.get(k, [])
                if snapshots is None or m.is_snapshot == snapshots
            )

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"recorder condition not met within {timeout} s")


def make_client(emu: IndexerEmulator, **kwargs: Any) -> DydxWebSocketClient:
    options: Dict[str, Any] = dict(reconnect=FAST_RECONNECT, workers=2)
    options.update(kwargs)
    return DydxWebSocketClient(url=emu.ws_url, **options)


def subscribe_all(client: DydxWebSocketClient, emu: IndexerEmulator, rec: Recorder) -> list:  # type: ignore[type-arg]
    """One subscription per channel (two markets' worth of ids, the demo account)."""
    addr = emu.demo_address
    return [
        client.subscribe_trades("BTC-USD", rec),
        client.subscribe_orderbook("BTC-USD", rec),
        client.subscribe_candles("BTC-USD", CandleResolution.ONE_MINUTE, rec),
        client.subscribe_markets(rec),
        client.subscribe_subaccount(addr, 0, rec),
        client.subscribe_parent_subaccount(addr, 0, rec),
        client.subscribe_block_height(rec),
    ]
