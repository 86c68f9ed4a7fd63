"""The per-route REST budget (route_limits.py): pure logic with a fake clock."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

from dydx_ws._route_limits import RequestDeferred, RouteLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_admits_its_share_of_the_route_limit_per_window() -> None:
    clock = Clock()
    limiter = RouteLimiter({"/v4/orders": (10, 10.0)}, share=0.5, max_wait=0.0, clock=clock)
    for _ in range(5):
        limiter.acquire("/v4/orders")
    with pytest.raises(RequestDeferred) as info:
        limiter.acquire("/v4/orders/parentSubaccountNumber")  # the same route
    assert info.value.route == "/v4/orders" and 9.9 < info.value.retry_in <= 10.0
    assert limiter.stats()["deferred"] == 1 and limiter.stats()["last_deferred"] == "/v4/orders"
    for _ in range(20):
        limiter.acquire("/v4/height")  # not a limited route
        limiter.acquire("/v4/ordersX")  # a prefix match needs a path boundary
    clock.now += 10.0
    limiter.acquire("/v4/orders")  # the window slid


def test_a_429_blocks_the_route_for_retry_after() -> None:
    clock = Clock()
    limiter = RouteLimiter({"/v4/fills": (100, 10.0)}, max_wait=1.0, clock=clock)
    limiter.throttle("/v4/fills", 5.0)
    with pytest.raises(RequestDeferred):
        limiter.acquire("/v4/fills")
    clock.now += 5.0
    limiter.acquire("/v4/fills")
    limiter.throttle("/v4/fills", None)  # no usable Retry-After: a default wait
    with pytest.raises(RequestDeferred):
        limiter.acquire("/v4/fills")
    assert limiter.stats()["throttled"] == 2


def test_waits_for_a_slot_within_max_wait_and_close_wakes_it() -> None:
    limiter = RouteLimiter({"/v4/orders": (2, 0.3)}, share=1.0, max_wait=2.0)
    limiter.acquire("/v4/orders")
    limiter.acquire("/v4/orders")
    started = time.monotonic()
    limiter.acquire("/v4/orders")  # waits for the oldest slot to leave the window
    assert 0.2 <= time.monotonic() - started < 1.5
    assert limiter.stats()["waited"] == 1
    slow = RouteLimiter({"/v4/orders": (1, 30.0)}, share=1.0, max_wait=30.0)
    slow.acquire("/v4/orders")
    errors: List[BaseException] = []

    def waiter() -> None:
        try:
            slow.acquire("/v4/orders")
        except RequestDeferred as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    slow.close()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1


def test_bad_configuration_raises() -> None:
    with pytest.raises(ValueError):
        RouteLimiter(share=0)
    with pytest.raises(ValueError):
        RouteLimiter({"/v4/orders": (0, 10.0)})
    with pytest.raises(ValueError):
        RouteLimiter(max_wait=-1)
