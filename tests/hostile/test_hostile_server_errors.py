"""Server error frames as the real server words them (docs/protocol.md §2.4, §4.4), against a
scripted server over loopback through the public API: a failed snapshot fetch of a channel sent
without an id is retried, and the reconnect penalty of later revisions fails only the refused
subscribe."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List

from dydx_ws import DydxWebSocketClient, ReconnectPolicy
from dydx_ws.engine._subscriptions import SubscriptionState
from dydx_ws.events import DisconnectedEvent, ErrorEvent
from tests.helpers.fault_server import FaultServer, RawConn, serve_indexer
from tests.helpers.waiting import wait_until

TIMEOUT = 20.0
HEIGHT = {"height": "26543048", "time": "2024-12-02T18:45:31.771Z"}
CANDLES = {"candles": []}
FETCH_FAILED = "Internal error, could not fetch data for subscription: v4_block_height."
PENALTY = (
    "Repeatedly exceeded the per-connection subscription limit for v4_candles (limit=32). "
    "Unsubscribe before subscribing again, or open an additional connection. Closing this "
    "connection; reconnecting sooner than 30s will be refused."
)


class Script:
    """Every subscribe of every connection, in order; ``answer(conn, msg, n)`` answers the n-th
    (1-based, over all connections)."""

    def __init__(self, answer: Callable[[RawConn, Dict[str, Any], int], None]) -> None:
        self.answer = answer
        self.subscribes: List[Dict[str, Any]] = []
        self._cond = threading.Condition()
        self._message_id = 0

    def run(self, conn: RawConn) -> None:
        conn.handshake()
        serve_indexer(conn, self._respond)

    def _respond(self, conn: RawConn, msg: Dict[str, Any]) -> None:
        if msg.get("type") != "subscribe":
            return
        with self._cond:
            self.subscribes.append(msg)
            n = len(self.subscribes)
            self._cond.notify_all()
        self.answer(conn, msg, n)

    def frame(self, kind: str, **fields: Any) -> Dict[str, Any]:
        """A server frame in the real server's key order, with the next message_id."""
        self._message_id += 1
        return {
            "type": kind,
            "connection_id": "fault-conn",
            "message_id": self._message_id,
            **fields,
        }


def make_client(url: str) -> DydxWebSocketClient:
    return DydxWebSocketClient(
        url=url, reconnect=ReconnectPolicy(initial_delay=0.05), check_interval=None
    )


def test_a_block_height_fetch_error_without_id_is_retried_until_subscribed() -> None:
    # The real server's error echoes the id the client sent: none for block height, so the
    # frame has a channel and no id key (docs/protocol.md §2.4, row 11).
    def answer(conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        assert "id" not in msg
        if n == 1:
            conn.send_json(script.frame("error", message=FETCH_FAILED, channel="v4_block_height"))
        else:
            reply = script.frame("subscribed", channel="v4_block_height", id="v4_block_height")
            conn.send_json({**reply, "contents": HEIGHT})

    script = Script(answer)
    errors: List[ErrorEvent] = []
    with FaultServer(script.run) as server, make_client(server.url) as client:
        client.on("error", errors.append)
        sub = client.subscribe_block_height()
        assert sub.wait_subscribed(timeout=TIMEOUT)  # the retry got its snapshot
        assert sub.state is SubscriptionState.ACTIVE
        assert len(script.subscribes) == 2
        assert len(server.connections) == 1  # retried on the same connection, no reconnect
        wait_until(lambda: any(e.kind == "server" for e in errors), TIMEOUT)
        server_error = next(e for e in errors if e.kind == "server")
        assert (server_error.channel, server_error.id) == ("v4_block_height", "v4_block_height")
        assert not [e for e in errors if e.kind == "subscription"]
    assert not server.errors


def test_the_reconnect_penalty_moves_only_the_refused_subscribe() -> None:
    # Later server revisions answer a connection that keeps hitting the per-connection limit
    # with this text (no channel/id) and close 4008 (docs/protocol.md §4.4); subscribes still
    # fetching on that connection are never answered.
    def answer(conn: RawConn, msg: Dict[str, Any], n: int) -> None:
        if n < 3:
            return  # their fetches are in flight when the connection is dropped
        if n == 3:
            conn.send_json(script.frame("error", message=PENALTY))
            conn.send_close(4008, '{"message":"Subscription limit abuse"}')
            return
        reply = script.frame("subscribed", channel=msg["channel"], id=msg["id"])
        conn.send_json({**reply, "contents": CANDLES})

    script = Script(answer)
    closes: List[DisconnectedEvent] = []
    with FaultServer(script.run) as server, make_client(server.url) as client:
        client.on("disconnected", closes.append)
        first = client.subscribe_candles("BTC-USD", "1MIN")
        second = client.subscribe_candles("ETH-USD", "1MIN")
        wait_until(lambda: len(script.subscribes) >= 2, TIMEOUT)
        refused = client.subscribe_candles("SOL-USD", "1MIN")
        # the refused one moves to a second connection; the others are re-sent on the first
        assert refused.wait_subscribed(timeout=TIMEOUT)
        assert first.wait_subscribed(timeout=TIMEOUT)
        assert second.wait_subscribed(timeout=TIMEOUT)
        assert (first.connection, second.connection, refused.connection) == (0, 0, 1)
        assert [(c.code, c.connection) for c in closes][:1] == [(4008, 0)]
        resent = sorted(m["id"] for m in script.subscribes[3:])
        assert resent == ["BTC-USD/1MIN", "ETH-USD/1MIN", "SOL-USD/1MIN"]  # each once
    assert not server.errors
