"""The pool's I/O baton (transport/_io_baton.py): one holder at a time, handed over in arrival
order, so a thread that keeps asking cannot starve the others."""

from __future__ import annotations

import threading
from typing import List

from dydx_ws.transport._io_baton import IoBaton
from tests.helpers.waiting import wait_until


def test_the_baton_is_handed_over_in_arrival_order() -> None:
    baton = IoBaton()
    order: List[str] = []
    baton.__enter__()  # the main thread holds it while three threads line up
    threads = []
    for name in ("a", "b", "c"):

        def take(name: str = name) -> None:
            with baton:
                order.append(name)

        t = threading.Thread(target=take, name=name)
        t.start()
        wait_until(lambda: len(baton._waiters) == len(threads) + 1, timeout=5)
        threads.append(t)
    baton.__exit__(None, None, None)
    for t in threads:
        t.join(5)
    assert order == ["a", "b", "c"]
    assert baton.handoffs == 3 and not baton._held


def test_a_holder_that_asks_again_goes_behind_the_waiters() -> None:
    baton = IoBaton()
    turns: List[str] = []
    stop = threading.Event()
    started = threading.Event()

    def greedy() -> None:  # a flooded connection: always has another burst
        while not stop.is_set():
            with baton:
                turns.append("greedy")
                started.set()

    def polite() -> None:
        for _ in range(20):
            with baton:
                turns.append("polite")

    g = threading.Thread(target=greedy)
    g.start()
    assert started.wait(5)
    p = threading.Thread(target=polite)
    p.start()
    p.join(10)
    stop.set()
    g.join(10)
    assert not p.is_alive() and turns.count("polite") == 20
