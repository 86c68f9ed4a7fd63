"""The idle watchdog's decisions (pure logic: a real registry and markets state, a fake clock)."""

from __future__ import annotations

from typing import List, Optional, Tuple

import pytest

from dydx_ws.engine._subscriptions import SubscriptionRegistry
from dydx_ws.engine._watchdog import DEFAULT_IDLE_LIMITS, IdleLimit, IdleWatchdog, parse_limits
from dydx_ws.protocol._channels import Topic
from dydx_ws.state import MarketsState

Key = Tuple[str, Optional[str]]


class Harness:
    def __init__(self, **limits: IdleLimit) -> None:
        self.registry = SubscriptionRegistry()
        self.calls: List[Tuple[Key, str]] = []
        merged = {**DEFAULT_IDLE_LIMITS, **limits}
        self.dog = IdleWatchdog(self.registry, MarketsState(), merged)
        self.now = 0.0

    def resync(self, key: Key, reason: str) -> bool:
        self.calls.append((key, reason))
        return True

    def add(self, channel: str, wire_id: Optional[str]) -> Key:
        topic = Topic(channel, wire_id, False)
        self.registry.add(topic, None, {})
        self.registry.confirm(topic.key)
        return topic.key

    def arrive(self, key: Key, n: int = 1) -> None:
        entry = self.registry.get(key)
        assert entry is not None
        entry.arrivals += n

    def tick(self, seconds: float, connected: bool = True) -> None:
        self.now += seconds
        self.dog.tick(self.now, connected, self.resync)


def test_block_height_is_judged_by_time() -> None:
    h = Harness(v4_block_height=IdleLimit(seconds=2.0))
    key = h.add("v4_block_height", None)
    h.tick(1.0)
    h.tick(1.0)
    assert h.calls == []
    h.tick(1.1)
    assert [k for k, _ in h.calls] == [key] and h.calls[0][1].startswith("idle: no message for")


def test_books_are_judged_by_blocks_when_the_block_clock_runs() -> None:
    h = Harness(v4_orderbook=IdleLimit(blocks=3, seconds=1.0))
    clock = h.add("v4_block_height", None)
    book = h.add("v4_orderbook", "BTC-USD")
    busy = h.add("v4_orderbook", "ETH-USD")
    h.tick(1.0)
    for _ in range(2):
        h.arrive(clock)
        h.arrive(busy)
        h.tick(5.0)  # far beyond the time limit: time does not count while blocks run
    assert h.calls == []
    h.arrive(clock)
    h.arrive(busy)
    h.tick(1.0)
    assert h.calls == [(book, "idle: no message for 3 blocks")]


def test_no_blocks_no_idle_book() -> None:
    """A halted chain (the clock's own silence is under its limit): books are not idle."""
    h = Harness(v4_orderbook=IdleLimit(blocks=3), v4_block_height=IdleLimit(seconds=100.0))
    h.add("v4_block_height", None)
    h.add("v4_orderbook", "BTC-USD")
    for _ in range(20):
        h.tick(1.0)
    assert h.calls == []


def test_without_a_block_clock_time_applies() -> None:
    h = Harness(v4_markets=IdleLimit(blocks=3, seconds=4.0))
    key = h.add("v4_markets", None)
    h.tick(1.0)
    h.tick(3.0)
    assert h.calls == []
    h.tick(1.5)
    assert [k for k, _ in h.calls] == [key]


def test_pending_and_unwatched_channels_are_ignored_and_disconnect_resets() -> None:
    h = Harness(v4_block_height=IdleLimit(seconds=1.0))
    h.add("v4_candles", "BTC-USD/1MIN")
    h.add("v4_subaccounts", "dydx1abc/0")
    key = h.add("v4_block_height", None)
    h.tick(0.9)
    h.tick(0.9, connected=False)  # silence restarts with the next connection
    h.tick(0.9)
    assert h.calls == []
    h.registry.mark_all_pending()
    h.tick(5.0)
    h.tick(5.0)
    assert h.calls == []
    h.registry.confirm(key)
    h.tick(0.5)
    h.tick(1.1)
    assert [k for k, _ in h.calls] == [key]


def test_after_a_resync_silence_is_measured_again() -> None:
    h = Harness(v4_block_height=IdleLimit(seconds=1.0))
    h.add("v4_block_height", None)
    h.tick(0.5)
    h.tick(1.1)
    h.tick(0.5)
    assert len(h.calls) == 1
    h.tick(0.6)
    assert len(h.calls) == 2


def test_parse_limits() -> None:
    assert parse_limits(None) is None
    assert parse_limits({}) == dict(DEFAULT_IDLE_LIMITS)
    out = parse_limits({"v4_trades": None, "v4_markets": (5, None)})
    assert out is not None and "v4_trades" not in out
    assert out["v4_markets"] == IdleLimit(blocks=5)
    with pytest.raises(ValueError):
        parse_limits({"v4_nope": (1, 1.0)})
    with pytest.raises(ValueError):
        parse_limits({"v4_markets": 5})
    with pytest.raises(ValueError):
        IdleLimit(blocks=0)
    with pytest.raises(ValueError):
        IdleLimit(seconds=-1.0)
