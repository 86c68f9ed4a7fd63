"""Bounded queues: every overflow policy drops visibly (stats + error event) and resyncs the
subscription, never silently (UBWA #205/#273 unbounded buffers; UBWA maxlen silent drops)."""

from __future__ import annotations

import threading
from typing import List

import pytest

from dydx_ws import ErrorEvent, OrderbookMessage, OverflowPolicy, SubscriptionState
from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import FAST_EMULATOR, make_client
from tests.helpers.waiting import wait_until


@pytest.mark.parametrize("policy", list(OverflowPolicy))
def test_overflow_is_counted_reported_and_resynced(policy: OverflowPolicy) -> None:
    gate = threading.Event()
    errors: List[ErrorEvent] = []
    snapshots: List[OrderbookMessage] = []

    def slow(msg: OrderbookMessage) -> None:
        if msg.is_snapshot:
            snapshots.append(msg)
        gate.wait(20)

    with IndexerEmulator(markets=["BTC-USD"], seed=11, **FAST_EMULATOR) as emu:
        client = make_client(emu, workers=1, queue_size=8, overflow=policy, block_timeout=0.05)
        with client:
            client.on("error", errors.append)
            sub = client.subscribe_orderbook("BTC-USD", slow)
            wait_until(lambda: client.stats()["dropped"] > 0, 20)
            overflow = [e for e in errors if e.kind == "overflow"]
            # events run on the (blocked) worker: they are queued, so check stats first
            stats = client.stats()
            assert stats["dropped"] > 0
            assert stats["subscriptions"]["v4_orderbook/BTC-USD"]["drops"] > 0
            assert stats["queue_depth"] <= 8 + 64  # bounded (plus the batch in hand)
            assert stats["resyncs"] >= 1
            gate.set()  # let the consumer catch up
            wait_until(lambda: any(e.kind == "overflow" for e in errors), 20)
            overflow = [e for e in errors if e.kind == "overflow"]
            assert overflow[0].channel == "v4_orderbook" and overflow[0].id == "BTC-USD"
            # the resync re-subscribed: a fresh snapshot replaced the book
            wait_until(lambda: len(snapshots) >= 2, 20)
            wait_until(lambda: not client.order_book("BTC-USD").stale, 20)
            assert sub.state is SubscriptionState.ACTIVE
            conn = client.stats()["connection_id"]
            rows = [r for r in emu.subscriptions() if r[0] == conn]
            assert rows == [(conn, "v4_orderbook", "BTC-USD")]  # no duplicate on the server
