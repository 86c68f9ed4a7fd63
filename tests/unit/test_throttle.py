"""Throttle: one report per category per interval, with the count of those held back."""

from __future__ import annotations

from typing import List

from dydx_ws.engine._throttle import Throttle


def test_one_report_per_interval_per_category_with_the_held_back_count() -> None:
    now: List[float] = [100.0]
    throttle = Throttle(1.0, clock=lambda: now[0])
    assert throttle.allow("a") == 0
    assert throttle.allow("a") is None
    assert throttle.allow("a") is None
    assert throttle.allow("b") == 0  # categories are independent
    now[0] += 0.5
    assert throttle.allow("a") is None
    now[0] += 0.6
    assert throttle.allow("a") == 3  # three were held back since the last report
    assert throttle.allow("a") is None


def test_categories_from_the_wire_stay_bounded() -> None:
    throttle = Throttle(60.0, clock=lambda: 0.0)
    for i in range(10_000):
        assert throttle.allow(i) == 0
    assert len(throttle._state) <= 4097
