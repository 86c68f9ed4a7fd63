"""The fault server itself: a well-behaved script gives a working subscription through the
public API, so a failure in a hostile test is the client's, not the harness's."""

from __future__ import annotations

import threading
from typing import Any, Dict

from dydx_ws import DydxWebSocketClient, ReconnectPolicy
from tests.helpers.fault_server import FaultServer, RawConn, channel_data, serve_indexer, subscribed

BOOK = {"bids": [{"price": "100", "size": "1"}], "asks": [{"price": "101", "size": "2"}]}


def well_behaved(conn: RawConn) -> None:
    conn.handshake()

    def respond(c: RawConn, msg: Dict[str, Any]) -> None:
        if msg.get("type") == "subscribe":
            c.send_json(subscribed(msg, BOOK))
            update = {"bids": [["99", "3"]]}
            c.send_json(channel_data(msg["channel"], msg["id"], update, message_id=2))

    serve_indexer(conn, respond)


def test_a_well_behaved_script_serves_a_book() -> None:
    with FaultServer(well_behaved) as server:
        client = DydxWebSocketClient(
            url=server.url, reconnect=ReconnectPolicy(initial_delay=0.05), check_interval=None
        )
        updated = threading.Event()
        with client:
            sub = client.subscribe_orderbook("BTC-USD", lambda m: m.is_snapshot or updated.set())
            assert sub.wait_subscribed(timeout=10)
            assert updated.wait(timeout=10)
            book = client.order_book("BTC-USD")
            assert book.best_ask is not None and book.best_ask.price == 101
            assert book.size_at(99, side="bid") == 3
        assert server.connections[0].request.startswith(b"GET /v4/ws")
        assert not server.errors
