"""Every rule of dydx_ws.transport._reconnect, deterministic under a fake clock and a seeded rng."""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

import pytest

from dydx_ws.transport._reconnect import Backoff, ReconnectPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixed(**kwargs: Any) -> ReconnectPolicy:
    return ReconnectPolicy(jitter=False, **kwargs)


def delays(b: Backoff, n: int) -> List[Optional[float]]:
    return [b.next_delay() for _ in range(n)]


def test_defaults() -> None:
    p = ReconnectPolicy()
    assert (p.initial_delay, p.factor, p.max_delay, p.jitter) == (0.25, 2.0, 30.0, True)
    assert (p.max_attempts, p.max_elapsed, p.stable_after, p.rate_limited_delay) == (
        None,
        None,
        10.0,
        30.0,
    )
    with pytest.raises(AttributeError):
        p.factor = 3.0  # type: ignore[misc]


def test_capped_exponential_without_jitter() -> None:
    b = fixed().backoff(clock=FakeClock())
    assert delays(b, 10) == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert b.attempts == 10


def test_cap_never_overflows() -> None:
    p = fixed(factor=10.0, max_delay=60.0)
    assert p.cap(10_000) == 60.0
    assert fixed(factor=1.0).cap(500) == 0.25
    with pytest.raises(ValueError):
        p.cap(-1)


def test_full_jitter_is_uniform_below_the_cap_and_deterministic() -> None:
    policy = ReconnectPolicy()
    a = policy.backoff(rng=random.Random(42), clock=FakeClock())
    b = policy.backoff(rng=random.Random(42), clock=FakeClock())
    first = delays(a, 12)
    assert first == delays(b, 12)
    reference = random.Random(42)
    expected = [reference.uniform(0.0, policy.cap(n)) for n in range(12)]
    assert first == expected
    for n, d in enumerate(first):
        assert d is not None and 0.0 <= d <= policy.cap(n)


def test_jitter_spreads_delays() -> None:
    b = ReconnectPolicy(max_delay=1.0, initial_delay=1.0).backoff(rng=random.Random(1))
    values = [b.next_delay() for _ in range(200)]
    assert len(set(values)) == 200
    assert min(v for v in values if v is not None) < 0.1
    assert max(v for v in values if v is not None) > 0.9


def test_max_attempts() -> None:
    b = fixed(max_attempts=3).backoff(clock=FakeClock())
    assert delays(b, 5) == [0.25, 0.5, 1.0, None, None]
    assert fixed(max_attempts=0).backoff().next_delay() is None


def test_max_elapsed_counts_from_first_failure_of_the_outage() -> None:
    clock = FakeClock()
    b = fixed(max_elapsed=10.0).backoff(clock=clock)
    clock.advance(500)  # time before the outage does not count
    assert b.next_delay() == 0.25
    assert b.outage_elapsed == 0.0
    clock.advance(9.9)
    assert b.next_delay() == 0.5
    clock.advance(0.1)
    assert b.next_delay() is None


def test_stable_connection_resets_the_counter() -> None:
    clock = FakeClock()
    b = fixed(stable_after=10.0, max_elapsed=100.0).backoff(clock=clock)
    delays(b, 4)
    b.connected()
    clock.advance(10.0)
    b.disconnected()
    assert b.attempts == 0 and b.outage_elapsed is None
    assert b.next_delay() == 0.25


def test_flapping_connection_does_not_reset_the_backoff() -> None:
    """Connect-then-drop faster than stable_after must keep climbing (pybit #201 class)."""
    clock = FakeClock()
    b = fixed(stable_after=10.0).backoff(clock=clock)
    seen = []
    for _ in range(9):
        d = b.next_delay()
        seen.append(d)
        clock.advance(d or 0.0)
        b.connected()
        clock.advance(9.99)
        b.disconnected()
    assert seen == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.attempts == 9


def test_flapping_outage_still_hits_max_elapsed() -> None:
    clock = FakeClock()
    b = fixed(stable_after=10.0, max_elapsed=20.0).backoff(clock=clock)
    results = []
    for _ in range(10):
        d = b.next_delay()
        results.append(d)
        if d is None:
            break
        clock.advance(d)
        b.connected()
        clock.advance(5.0)  # shorter than stable_after
        b.disconnected()
    assert results[-1] is None
    assert len(results) < 10


def test_next_delay_records_a_missing_disconnect() -> None:
    clock = FakeClock()
    b = fixed().backoff(clock=clock)
    delays(b, 3)
    b.connected()
    clock.advance(1.0)
    assert b.next_delay() == 2.0  # flap: implicit disconnect, counter kept
    b.connected()
    clock.advance(60.0)
    assert b.next_delay() == 0.25  # stable: implicit disconnect resets


def test_disconnected_without_connected_is_a_no_op() -> None:
    b = fixed().backoff(clock=FakeClock())
    delays(b, 2)
    b.disconnected()
    assert b.attempts == 2


def test_rate_limited_waits_at_least_the_penalty() -> None:
    b = ReconnectPolicy().backoff(rng=random.Random(3), clock=FakeClock())
    d = b.next_delay(rate_limited=True)
    assert d is not None and d >= 30.0
    assert b.attempts == 1
    assert fixed(max_delay=60.0, initial_delay=60.0).backoff().next_delay(rate_limited=True) == 60.0
    assert fixed(rate_limited_delay=45.0).backoff().next_delay(rate_limited=True) == 45.0


def test_reset() -> None:
    b = fixed().backoff(clock=FakeClock())
    delays(b, 5)
    b.reset()
    assert b.attempts == 0 and b.next_delay() == 0.25
    assert "attempts=1" in repr(b) and b.policy == fixed()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": 0},
        {"initial_delay": -1},
        {"initial_delay": float("nan")},
        {"initial_delay": "1"},
        {"factor": 0.5},
        {"factor": float("inf")},
        {"max_delay": 0.1},  # below initial_delay
        {"max_delay": True},
        {"jitter": 1},
        {"max_attempts": -1},
        {"max_attempts": 1.5},
        {"max_attempts": True},
        {"max_elapsed": 0},
        {"max_elapsed": -5.0},
        {"stable_after": -1},
        {"rate_limited_delay": -1},
    ],
)
def test_invalid_arguments(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(**kwargs)


def test_default_rng_and_clock_work() -> None:
    b = ReconnectPolicy().backoff()
    d = b.next_delay()
    assert d is not None and 0.0 <= d <= 0.25
    b.connected()
    b.disconnected()
    assert b.attempts == 1  # a connection of a few microseconds is a flap
