"""Reconnect, heartbeat and fault handling against the emulator's fault injection.

Each test names the anchor bug (anchors.md §3) it would catch.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import List, Set, Tuple

import pytest

from dydx_ws import (
    DisconnectedEvent,
    DydxWebSocketClient,
    ReconnectedEvent,
    ReconnectPolicy,
    SubscriptionState,
)
from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import (
    FAST_EMULATOR,
    Recorder,
    make_client,
    sdk_threads,
    subscribe_all,
)
from tests.helpers.waiting import wait_until


def server_rows(emu: IndexerEmulator, connection_id: object) -> List[Tuple[str, str]]:
    return [(ch, i) for c, ch, i in emu.subscriptions() if c == connection_id]


def expected_rows(client: DydxWebSocketClient) -> Set[Tuple[str, str]]:
    return {(s.channel, s.id if s.id is not None else "v4_markets") for s in client.subscriptions()}


def restored(client: DydxWebSocketClient, emu: IndexerEmulator) -> bool:
    if not client.connected:
        return False
    if any(s.state is not SubscriptionState.ACTIVE for s in client.subscriptions()):
        return False
    rows = server_rows(emu, client.stats()["connection_id"])
    return len(rows) == len(set(rows)) and set(rows) == expected_rows(client)


@pytest.mark.timeout(240)
def test_fifty_forced_disconnects_restore_every_subscription_exactly_once() -> None:
    """pybit #13, paho #375/#682, slack #1701: reconnect without (faithful) resubscription;
    v4-rs: resubscribe loses ``batched``; UBWA #238: no reconnect after a reset."""
    rng = random.Random(42)
    reconnects: List[ReconnectedEvent] = []
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, **FAST_EMULATOR) as emu:
        client = make_client(emu, ping_interval=0.25, pong_timeout=0.35)
        client.on("reconnected", reconnects.append)
        rec = Recorder()
        with client:
            subs = subscribe_all(client, emu, rec)
            batched = client.subscribe_trades("ETH-USD", rec, batched=True)
            keys = {s.key for s in [*subs, batched]}
            wait_until(lambda: restored(client, emu), 15)
            faults = []
            for _ in range(50):
                before = client.stats()["reconnects"]
                fault = rng.choice(["drop", "drop", "stall", "429"])
                faults.append(fault)
                if fault == "drop":
                    # None: TCP abort without a close frame (the client sees 1006)
                    emu.drop_connections(code=rng.choice([1000, 1001, None, 1011, 1012, 4000]))
                elif fault == "stall":
                    emu.stall(0.8)  # no data, no pongs: only our client pings can tell
                else:
                    emu.reject_handshakes(0.4, status=429)
                    emu.drop_connections(code=1012)
                wait_until(lambda b=before: client.stats()["reconnects"] > b, 20)
                wait_until(lambda: restored(client, emu), 20)
                # the batched flag survived the resubscription
                assert batched.batched and batched.state is SubscriptionState.ACTIVE
                # confirmed on the I/O thread first; the worker then replaces the stale book
                wait_until(lambda: not client.order_book("BTC-USD").stale, 10)
            wait_until(lambda: len(reconnects) >= 50, 20)
            assert {"drop", "stall", "429"} <= set(faults)
            for event in reconnects:
                assert set(event.restored) == keys and event.failed == []
                assert event.gap_seconds >= 0
            # every channel kept flowing after the last reconnect
            counts = {k: rec.count(k) for k in keys}
            rec.wait(lambda: all(rec.count(k) > counts[k] for k in keys), 20)
            # a fresh snapshot after each of the 50 reconnects, for every subscription
            for key in keys:
                assert rec.count(key, snapshots=True) >= 51
            stats = client.stats()
            assert stats["decode_errors"] == 0 and stats["dropped"] == 0
    assert sdk_threads() == []


@pytest.mark.timeout(150)
def test_a_45_second_blocking_callback_does_not_break_the_heartbeat() -> None:
    """paho #328/#379, UBWA #284: a slow callback starves keepalive and the server drops us."""
    gate = threading.Event()
    started = threading.Event()
    disconnects: List[DisconnectedEvent] = []
    heights = Recorder()

    def slow(msg: object) -> None:
        if not started.is_set():
            started.set()
            gate.wait(45)  # blocks a worker for 45 s

    with (
        IndexerEmulator(
            markets=["BTC-USD"],
            seed=5,
            heartbeat_interval=2.0,
            heartbeat_timeout=1.0,
            **{**FAST_EMULATOR, "block_time": 0.1},
        ) as emu,
        make_client(emu, workers=3, ping_interval=0) as client,
    ):
        client.on("disconnected", disconnects.append)
        client.subscribe_trades("BTC-USD", slow)
        client.subscribe_block_height(heights)
        assert started.wait(20)
        t0 = time.monotonic()
        seen = heights.count()
        while time.monotonic() - t0 < 45:  # other subscriptions keep flowing meanwhile
            heights.wait(lambda n=seen: heights.count() > n, 10)
            seen = heights.count()
            time.sleep(0.5)  # pacing the observation loop only, not synchronisation
        gate.set()
        assert disconnects == []
        assert emu.connections_accepted == 1
        assert client.connected and client.stats()["reconnects"] == 0


def test_dead_link_is_detected_by_client_pings() -> None:
    """pybit #31/#56, UBWA #216: a silent connection looks open forever without pings."""
    with IndexerEmulator(markets=["BTC-USD"], seed=1, **FAST_EMULATOR) as emu:
        with make_client(emu, ping_interval=0.2, pong_timeout=0.3) as client:
            closes: List[DisconnectedEvent] = []
            client.on("disconnected", closes.append)
            client.subscribe_block_height().wait_subscribed(10)
            emu.stall(3)
            wait_until(lambda: closes, 5)
            assert "pong" in str(closes[0].error)
            wait_until(lambda: restored(client, emu), 10)


def test_backoff_never_spins_while_the_server_refuses() -> None:
    """pybit #201 (100% CPU reconnect loop), UBWA fixed 0.1 s loop; 429 waits >= the penalty."""
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.4, rate_limited_delay=0.5)
    with IndexerEmulator(markets=["BTC-USD"], seed=1, **FAST_EMULATOR) as emu:
        with make_client(emu, reconnect=policy) as client:
            assert client.wait_connected(10)
            rejected0 = emu.handshakes_rejected
            emu.reject_handshakes(2.5, status=429)
            emu.drop_connections(code=1012)
            t0 = time.monotonic()
            wait_until(lambda: emu.handshakes_rejected > rejected0, 5)
            wait_until(lambda: client.connected, 10)
            elapsed = time.monotonic() - t0
            attempts = emu.handshakes_rejected - rejected0
            assert elapsed >= 2.0
            assert attempts <= elapsed / 0.5 + 1  # never faster than the 429 penalty


def test_connects_once_a_server_appears_on_a_dead_port() -> None:
    """slack #1462 (no reconnect after an outage), binance #258 (thread dies on first error)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errors: list = []  # type: ignore[type-arg]
    client = DydxWebSocketClient(
        url=f"ws://127.0.0.1:{port}/v4/ws",
        reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.2),
    )
    client.on("error", errors.append)
    client.start()
    try:
        wait_until(lambda: len([e for e in errors if e.kind == "connection"]) >= 2, 10)
        assert not client.connected
        with IndexerEmulator(markets=["BTC-USD"], seed=1, port=port, **FAST_EMULATOR):
            assert client.wait_connected(10)
            assert client.subscribe_block_height().wait_subscribed(10)
    finally:
        assert client.stop(5)


def test_max_attempts_gives_up_with_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errors: list = []  # type: ignore[type-arg]
    policy = ReconnectPolicy(initial_delay=0.02, max_delay=0.05, max_attempts=3)
    with DydxWebSocketClient(url=f"ws://127.0.0.1:{port}", reconnect=policy) as client:
        client.on("error", errors.append)
        wait_until(lambda: any("giving up" in e.message for e in errors), 10)
    assert sdk_threads() == []


def test_book_is_stale_while_disconnected_and_replaced_by_the_next_snapshot() -> None:
    """ccxt #29210: a post-reconnect snapshot merged into the stale book leaves ghost levels."""
    with IndexerEmulator(markets=["BTC-USD"], seed=9, **FAST_EMULATOR) as emu:
        with make_client(emu) as client:
            stale_seen = threading.Event()
            client.on("disconnected", lambda e: stale_seen.set())
            sub = client.subscribe_orderbook("BTC-USD")
            sub.wait_subscribed(10)
            book = client.order_book("BTC-USD")
            wait_until(lambda: len(book) > 0, 10)
            # a ghost level that only this client has (the server never had it)
            ghost = book.best_bid.price - 1000  # type: ignore[union-attr]
            from dydx_ws.models import PriceLevel

            book.apply_levels([PriceLevel(ghost, book.best_bid.size)], [])  # type: ignore[union-attr]
            assert book.size_at(ghost) > 0
            emu.reject_handshakes(0.5)
            emu.drop_connections(code=1011)
            assert stale_seen.wait(5)
            assert book.stale
            wait_until(lambda: sub.state is SubscriptionState.ACTIVE and not book.stale, 15)
            assert book.size_at(ghost) == 0


def _io_stack_depth() -> int:
    import sys

    io = next(t for t in threading.enumerate() if t.name == "dydx-ws-io")
    frame = sys._current_frames()[io.ident]  # type: ignore[index]
    depth = 0
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    return depth


def _idle_io_depth() -> int:
    """The I/O thread's stack depth while it waits for input (the shallowest of samples spread
    over 0.3 s: a sample that catches it mid-frame is deeper)."""
    samples = []
    for _ in range(30):
        samples.append(_io_stack_depth())
        time.sleep(0.01)  # spreading the samples, not synchronisation
    return min(samples)


def test_drops_while_resubscribing_never_block_recovery() -> None:
    """pybit #62: an error during resubscription wedged the reconnect logic; websocket-client
    #858/#891: reconnects recursing deeper each time."""
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=8, **FAST_EMULATOR) as emu:
        with make_client(emu) as client:
            rec = Recorder()
            subscribe_all(client, emu, rec)
            wait_until(lambda: restored(client, emu), 15)
            depth_before = _idle_io_depth()
            emu.set_snapshot_delay(0.3)  # keep the resubscriptions in flight when we drop
            for _ in range(8):
                before = client.stats()["reconnects"]
                emu.drop_connections(code=1011)
                wait_until(lambda b=before: client.stats()["reconnects"] > b, 15)
            emu.set_snapshot_delay(0.0)
            wait_until(lambda: restored(client, emu), 20)
            # a loop around run_forever: the same depth after 8 reconnects, not 8 levels deeper
            assert _idle_io_depth() <= depth_before


@pytest.mark.parametrize("code", [None, 1011])
def test_a_dead_socket_is_noticed_without_client_pings(code: object) -> None:
    """UBWA #238 / binance #258: a reset connection must end the session at once, not sit in
    select() on a closed socket until some ping happens to fail."""
    with IndexerEmulator(markets=["BTC-USD"], seed=2, **FAST_EMULATOR) as emu:
        with make_client(emu, ping_interval=0) as client:
            client.subscribe_orderbook("BTC-USD").wait_subscribed(10)
            for _ in range(5):
                before = client.stats()["reconnects"]
                emu.drop_connections(code=code)  # type: ignore[arg-type]
                wait_until(lambda b=before: client.stats()["reconnects"] > b, 5)


def test_stop_is_bounded_during_a_hanging_handshake() -> None:
    """binance #227/#132: stop() hung while the network did not answer."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    held: list = []  # type: ignore[type-arg]

    def accept_and_say_nothing() -> None:
        held.append(server.accept())
        accepted.set()

    acceptor = threading.Thread(target=accept_and_say_nothing, name="silent-server")
    acceptor.start()
    try:
        port = server.getsockname()[1]
        client = DydxWebSocketClient(url=f"ws://127.0.0.1:{port}", connect_timeout=30)
        client.start()
        assert accepted.wait(5)  # the TCP connection is up; the upgrade is never answered
        t0 = time.monotonic()
        assert client.stop(timeout=3)
        assert time.monotonic() - t0 < 3
        assert sdk_threads() == []
    finally:
        acceptor.join(5)
        for conn, _ in held:
            conn.close()
        server.close()
