"""The pool's dial gate (transport/_dial_gate.py): turns spaced apart, a 429 holds every turn
back, and a stop ends a wait at once."""

from __future__ import annotations

import threading
import time
from typing import List

from dydx_ws.transport._dial_gate import DialGate


def test_turns_are_spaced_and_the_first_is_immediate() -> None:
    gate = DialGate(spacing=0.05)
    stop = threading.Event()
    times: List[float] = []
    start = time.monotonic()
    for _ in range(4):
        assert gate.wait_turn(stop)
        times.append(time.monotonic())
    assert times[0] - start < 0.04
    assert all(b - a >= 0.045 for a, b in zip(times, times[1:]))


def test_a_hold_delays_every_waiter_even_one_already_waiting() -> None:
    gate = DialGate(spacing=1.0)
    stop = threading.Event()
    assert gate.wait_turn(stop)  # the next turn is due in 1 s
    started: List[float] = []

    def dial() -> None:
        if gate.wait_turn(stop):
            started.append(time.monotonic())

    waiter = threading.Thread(target=dial)
    waiter.start()  # waiting for its turn ...
    held = time.monotonic() + 1.5
    gate.hold_until(held)  # ... when a 429 comes in
    waiter.join(10)
    assert started and started[0] >= held
    assert gate.penalties == 1


def test_stop_ends_a_wait() -> None:
    gate = DialGate(spacing=0.01)
    gate.hold_until(time.monotonic() + 60)
    stop = threading.Event()
    result: List[bool] = []
    waiter = threading.Thread(target=lambda: result.append(gate.wait_turn(stop)))
    waiter.start()
    stop.set()
    waiter.join(5)
    assert result == [False]
