"""The connection pool against a scripted server that breaks the rules: a front door answering
HTTP 429 to a handshake (the penalty is per address, so the whole pool must hold back), and a
connection that dies while others carry on (engine/_pool.py, transport/_dial_gate.py)."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

from dydx_ws import DydxWebSocketClient, ReconnectPolicy
from tests.helpers.fault_server import (
    ConnectionGone,
    FaultServer,
    RawConn,
    serve_indexer,
    subscribed,
)
from tests.helpers.waiting import wait_until

TIMEOUT = 30.0
TRADES = {"trades": []}
PENALTY = 1.0  # seconds the client must wait after a 429 (the real default is 30)


def one_trade_per_connection(url: str, policy: ReconnectPolicy) -> DydxWebSocketClient:
    """A client whose every trades subscription needs a connection of its own."""
    return DydxWebSocketClient(
        url=url,
        reconnect=policy,
        check_interval=None,
        idle_limits=None,
        subscription_limits={"v4_trades": 1},
    )


class FrontDoor:
    """Records every handshake's time; answers the ``refuse``-th (1-based) with HTTP 429."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.lock = threading.Lock()
        self.handshakes: List[float] = []
        self.refused_at: List[float] = []

    def run(self, conn: RawConn) -> None:
        conn.read_request()
        with self.lock:
            self.handshakes.append(time.monotonic())
            n = len(self.handshakes)
        if n == self.refuse:
            with self.lock:
                self.refused_at.append(time.monotonic())
            conn.http_response("429 Too Many Requests", ["Retry-After: 1"])
            return
        conn.handshake()
        serve_indexer(conn, self.answer)

    def answer(self, conn: RawConn, msg: Dict[str, Any]) -> None:
        if msg.get("type") == "subscribe":
            conn.send_json(subscribed(msg, contents=TRADES))


def test_a_429_on_one_connection_holds_back_every_dial_of_the_pool() -> None:
    door = FrontDoor(refuse=2)
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, rate_limited_delay=PENALTY)
    with FaultServer(door.run) as server, one_trade_per_connection(server.url, policy) as client:
        assert client.wait_connected(TIMEOUT)
        # three trades subscriptions need three connections: the 2nd dial is refused, and the
        # 3rd connection is opened once the client has seen that refusal
        subs = [client.subscribe_trades(t) for t in ("BTC-USD", "ETH-USD")]
        wait_until(lambda: client.stats()["connect_failures"] == 1, TIMEOUT)
        subs.append(client.subscribe_trades("SOL-USD"))
        for sub in subs:
            assert sub.wait_subscribed(TIMEOUT)
        assert sorted(s.connection for s in subs) == [0, 1, 2]
        (refused,) = door.refused_at
        later = [t for t in door.handshakes if t > refused]
        # nobody of the pool dialled within the penalty, not only the refused connection
        assert len(later) == 2 and min(later) - refused >= PENALTY * 0.95
        # and the dials were never a burst: at least the gate's spacing apart
        gaps = [b - a for a, b in zip(door.handshakes, door.handshakes[1:])]
        assert min(gaps) >= 0.2
        assert client.stats()["connect_failures"] == 1
    assert not server.errors


def test_a_connection_that_dies_leaves_the_others_streaming() -> None:
    # the second connection is reset by the server right after its first subscribe
    state = {"conns": 0}
    lock = threading.Lock()

    def run(conn: RawConn) -> None:
        conn.handshake()
        with lock:
            state["conns"] += 1
            n = state["conns"]

        def answer(c: RawConn, msg: Dict[str, Any]) -> None:
            if msg.get("type") != "subscribe":
                return
            if n == 2:
                c.abort()  # TCP reset, no close frame
                raise ConnectionGone("reset by the script")
            c.send_json(subscribed(msg, contents=TRADES))

        serve_indexer(conn, answer)

    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
    with FaultServer(run) as server, one_trade_per_connection(server.url, policy) as client:
        disconnects: List[int] = []
        client.on("disconnected", lambda e: disconnects.append(e.connection))
        first = client.subscribe_trades("BTC-USD")
        assert first.wait_subscribed(TIMEOUT)
        second = client.subscribe_trades("ETH-USD")
        assert second.wait_subscribed(TIMEOUT)  # its connection came back (the 3rd accept)
        assert (first.connection, second.connection) == (0, 1)
        assert set(disconnects) == {1}
        conns = {c["index"]: c for c in client.stats()["connections"]}
        assert conns[0]["reconnects"] == 0 and conns[1]["reconnects"] == 1
    assert not server.errors
