"""Subscribe pacing against a server that enforces the real rate limit (docs/protocol.md §4.3): a
fixed 1 s window per channel+id that starts when the server *reads* the first subscribe, 2
subscribes per window, the third answered "Too many subscribe attempts" and closed 1008.

A server that reads late (busy, or a slow link) starts its window late, so pacing on the
client's clock needs margin; and a subscribe/unsubscribe churn must not queue subscribes the
pacer then trickles out for minutes.
"""

from __future__ import annotations

import select
import threading
import time
from typing import Dict, List, Optional, Tuple

from dydx_ws import DydxWebSocketClient, ReconnectPolicy
from tests.helpers.fault_server import FaultServer, RawConn, connected_frame, subscribed
from tests.helpers.waiting import wait_until

TIMEOUT = 20.0
TRADES = {"trades": []}
LIMIT_TEXT = "Too many subscribe attempts for channel {}. Please  reconnect and try again."


class RateLimitedServer:
    """Answers subscribes and unsubscribes like the real server, with its subscribe limiter.
    ``late_read``: seconds it waits, once the first subscribe has arrived, before reading it."""

    def __init__(self, late_read: float = 0.0) -> None:
        self.late_read = late_read
        self.limited: List[str] = []  # keys the limiter refused
        self.subscribed: Dict[Tuple[str, Optional[str]], int] = {}  # key -> registrations
        self.subscribes = 0
        self.lock = threading.Lock()

    def run(self, conn: RawConn) -> None:
        conn.handshake()
        conn.send_json(connected_frame())
        if self.late_read:
            select.select([conn.sock], [], [], 10.0)  # the first subscribe is here ...
            time.sleep(self.late_read)  # ... and is read late
        windows: Dict[str, Tuple[float, int]] = {}  # key -> (window start, hits)
        while True:
            try:
                msg = conn.recv_json(timeout=3600)
            except Exception:
                return
            now = time.monotonic()
            key = (msg.get("channel"), msg.get("id"))
            if msg.get("type") == "unsubscribe":
                with self.lock:
                    self.subscribed.pop(key, None)
                conn.send_json({"type": "unsubscribed", "connection_id": "fault-conn", **msg})
                continue
            if msg.get("type") != "subscribe":
                continue
            name = f"{key[0]}-{key[1]}"
            start, hits = windows.get(name, (now, 0))
            if now - start >= 1.0:
                start, hits = now, 0
            windows[name] = (start, hits + 1)
            with self.lock:
                self.subscribes += 1
                if hits + 1 > 2:
                    self.limited.append(name)
            if hits + 1 > 2:
                conn.send_json({"type": "error", "message": LIMIT_TEXT.format(name)})
                conn.send_close(1008, '{"message":"Rate limited"}')
                return
            with self.lock:
                self.subscribed[key] = self.subscribed.get(key, 0) + 1
            conn.send_json(subscribed(msg, contents=TRADES))


def make_client(url: str) -> DydxWebSocketClient:
    return DydxWebSocketClient(
        url=url, reconnect=ReconnectPolicy(initial_delay=0.05), check_interval=None
    )


def test_resubscribing_one_market_never_trips_a_server_that_reads_late() -> None:
    # The server reads the first subscribe 0.6 s late, so its window ends 1.6 s after the
    # client sent it: a third subscribe paced only just past 1 s on the client's clock would be
    # refused and the connection closed.
    server = RateLimitedServer(late_read=0.6)
    with FaultServer(server.run) as fault, make_client(fault.url) as client:
        sub = client.subscribe_trades("BTC-USD")
        for _ in range(3):
            assert sub.wait_subscribed(TIMEOUT)
            sub.unsubscribe()
            sub = client.subscribe_trades("BTC-USD")
        assert sub.wait_subscribed(TIMEOUT)
        assert server.limited == []
        assert server.subscribes == 4
        assert client.stats()["reconnects"] == 0
        assert len(fault.connections) == 1


def test_a_subscribe_unsubscribe_churn_ends_in_the_last_state_at_once() -> None:
    server = RateLimitedServer()
    with FaultServer(server.run) as fault, make_client(fault.url) as client:
        client.wait_connected(TIMEOUT)
        for _ in range(200):
            client.subscribe_trades("ETH-USD").unsubscribe()
        sub = client.subscribe_trades("ETH-USD")
        assert sub.wait_subscribed(TIMEOUT)
        # The queued churn collapsed: the server holds the one subscription the client holds,
        # reached without waiting out 200 paced subscribes (which would take minutes).
        wait_until(lambda: server.subscribed == {("v4_trades", "ETH-USD"): 1}, timeout=5)
        assert server.limited == []
        assert server.subscribes <= 6  # 2 per 2 s pacing window while the loop runs
        assert client.stats()["reconnects"] == 0
        assert len(fault.connections) == 1
        assert client.subscriptions() == [sub]
