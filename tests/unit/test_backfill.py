"""TradeBackfill: the trades a gap hid, delivered oldest first and once, before the new snapshot.

Trade ids are ``height ‖ tx ‖ event`` as 24 hex digits, so their text order is chronological
(protocol.md §3.2, §5.4). REST back-fill runs against a tiny loopback HTTP server that serves
``GET /v4/trades/perpetualMarket/{ticker}`` with comlink's cursor semantics.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from dydx_ws import TradesMessage, decode_message
from dydx_ws.rest import IndexerRestClient
from dydx_ws.state._backfill import TradeBackfill

TICKER = "BTC-USD"
_ids = iter(range(1, 10**9))


def tid(height: int, tx: int = 0, event: int = 0) -> str:
    return f"{height:08x}{tx:08x}{event:08x}"


def trade_json(trade_id: str, height: Optional[int] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "id": trade_id,
        "side": "BUY",
        "size": "0.1",
        "price": "100",
        "type": "LIMIT",
        "createdAt": "2025-01-01T00:00:00.000Z",
    }
    if height is not None:
        out["createdAtHeight"] = str(height)
    return out


def hex_trades(*ids: str) -> List[Dict[str, Any]]:
    return [trade_json(i, int(i[:8], 16)) for i in ids]


def frame(trades: List[Dict[str, Any]], *, snapshot: bool) -> TradesMessage:
    raw: Dict[str, Any] = {
        "type": "subscribed" if snapshot else "channel_data",
        "connection_id": "c",
        "message_id": next(_ids),
        "channel": "v4_trades",
        "id": TICKER,
        "contents": {"trades": trades},
    }
    if not snapshot:
        raw["version"] = "2.1.0"
    msg = decode_message(json.dumps(raw))
    assert isinstance(msg, TradesMessage)
    return msg


def newest_first(*ids: str) -> List[str]:
    return sorted(ids, reverse=True)


class TradesServer:
    """Serves ``trades`` (any order) newest first, honouring ``limit`` and
    ``createdBeforeOrAtHeight`` like comlink; ``fail`` answers 400 instead."""

    def __init__(self, trades: List[Dict[str, Any]]) -> None:
        self.trades = sorted(trades, key=lambda t: t["id"], reverse=True)
        self.hits = 0
        self.fail = False
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                srv.hits += 1
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, body = srv.answer(url.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, path: str, query: Dict[str, str]) -> Any:
        if self.fail:
            return 400, {"errors": [{"msg": "scripted failure"}]}
        if path != f"/v4/trades/perpetualMarket/{TICKER}":
            return 404, {"errors": [{"msg": "not found"}]}
        rows = self.trades
        if "createdBeforeOrAtHeight" in query:
            top = int(query["createdBeforeOrAtHeight"])
            rows = [t for t in rows if int(t["createdAtHeight"]) <= top]
        return 200, {"trades": rows[: int(query.get("limit", "1000"))]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def history() -> Iterator[TradesServer]:
    """Two trades per height 1..60."""
    server = TradesServer(hex_trades(*(tid(h, tx) for h in range(1, 61) for tx in range(2))))
    yield server
    server.close()


@pytest.fixture
def rest(history: TradesServer) -> Iterator[IndexerRestClient]:
    with IndexerRestClient(history.url, timeout=5.0, retries=0) as client:
        yield client


def ids(msg: Optional[TradesMessage]) -> List[str]:
    assert msg is not None
    return [t.id for t in msg.trades]


def test_first_snapshot_and_updates_deliver_nothing_extra() -> None:
    filler = TradeBackfill(TICKER, None)
    assert filler.before_delivery(frame(hex_trades(tid(5), tid(4)), snapshot=True)) is None
    assert filler.before_delivery(frame(hex_trades(tid(6)), snapshot=False)) is None
    assert filler.backfilled == 0


def test_gap_inside_the_snapshot(history: TradesServer, rest: IndexerRestClient) -> None:
    filler = TradeBackfill(TICKER, rest)
    filler.before_delivery(
        frame(hex_trades(*newest_first(tid(100), tid(101), tid(102))), snapshot=True)
    )
    filler.before_delivery(frame([trade_json(tid(103, 1))], snapshot=False))  # no height
    # After the gap the snapshot (newest first) reaches back past the last delivered trade.
    snap = frame(
        hex_trades(
            *newest_first(
                tid(102), tid(103, 1), tid(103, 2), tid(104), tid(105, 0, 3), tid(105, 0, 1)
            )
        ),
        snapshot=True,
    )
    extra = filler.before_delivery(snap)
    assert ids(extra) == [tid(103, 2), tid(104), tid(105, 0, 1), tid(105, 0, 3)]
    assert extra is not None and extra.backfilled and not extra.is_snapshot
    assert extra.type == "channel_data" and extra.message_id == snap.message_id
    assert filler.backfilled == 4
    assert history.hits == 0  # the snapshot covered the gap: REST not needed
    # A later snapshot with nothing new delivers nothing.
    assert filler.before_delivery(snap) is None


def test_gap_longer_than_the_snapshot_is_paged_from_rest(
    history: TradesServer, rest: IndexerRestClient
) -> None:
    filler = TradeBackfill(TICKER, rest)
    filler.before_delivery(frame(hex_trades(tid(10, 0), tid(9, 1)), snapshot=True))
    # The new snapshot only holds heights 50..60: heights 10 (tx 1) .. 49 came from REST.
    snap_ids = newest_first(*(tid(h, tx) for h in range(50, 61) for tx in range(2)))
    extra = filler.before_delivery(frame(hex_trades(*snap_ids), snapshot=True))
    expected = sorted(t["id"] for t in history.trades if t["id"] > tid(10, 0))
    assert ids(extra) == expected  # oldest first, each once, nothing at or before the last
    assert expected[0] == tid(10, 1) and len(expected) == 101
    assert history.hits >= 1


def test_duplicates_are_delivered_once(history: TradesServer, rest: IndexerRestClient) -> None:
    filler = TradeBackfill(TICKER, rest)
    filler.before_delivery(frame(hex_trades(tid(40)), snapshot=True))
    filler.before_delivery(frame(hex_trades(tid(41, 0), tid(41, 0)), snapshot=False))
    # The snapshot repeats a trade and overlaps what REST pages back over (heights 50..52).
    snap_ids = newest_first(tid(52, 1), tid(52, 0), tid(51, 1), tid(51, 1), tid(50, 0))
    extra = filler.before_delivery(frame(hex_trades(*snap_ids), snapshot=True))
    got = ids(extra)
    assert got == sorted(set(got))
    assert got[0] == tid(41, 1) and got[-1] == tid(52, 1)
    assert tid(41, 0) not in got and tid(40) not in got


def test_rest_failure_still_delivers_the_snapshot_part(
    history: TradesServer, rest: IndexerRestClient, caplog: pytest.LogCaptureFixture
) -> None:
    history.fail = True
    filler = TradeBackfill(TICKER, rest)
    filler.before_delivery(frame(hex_trades(tid(5)), snapshot=True))
    with caplog.at_level(logging.WARNING, logger="dydx_ws.state._backfill"):
        extra = filler.before_delivery(frame(hex_trades(tid(30), tid(20)), snapshot=True))
    assert ids(extra) == [tid(20), tid(30)]
    assert "incomplete" in caplog.text


def test_non_hex_ids_fall_back_to_the_seen_set(
    history: TradesServer, rest: IndexerRestClient
) -> None:
    filler = TradeBackfill(TICKER, rest)
    filler.before_delivery(frame([trade_json("b-old", 5), trade_json("a-old", 5)], snapshot=True))
    extra = filler.before_delivery(
        frame(
            [trade_json("z-new", 7), trade_json("b-old", 5), trade_json("0-new", 6)], snapshot=True
        )
    )
    assert ids(extra) == ["0-new", "z-new"]  # unordered ids: not seen before = missing
    assert history.hits == 0  # no order, so no REST paging


def test_non_hex_ids_next_to_hex_ids(history: TradesServer, rest: IndexerRestClient) -> None:
    filler = TradeBackfill(TICKER, rest)
    filler.before_delivery(frame([trade_json("zzz", 9), *hex_trades(tid(9))], snapshot=True))
    # "zzz" must not become the "last delivered" id (it would turn the ordered back-fill off).
    extra = filler.before_delivery(
        frame(
            [*hex_trades(tid(12), tid(11)), trade_json("zzz", 9), trade_json("new", 12)],
            snapshot=True,
        )
    )
    assert ids(extra) == [tid(9, 1), tid(10), tid(10, 1), tid(11), tid(11, 1), tid(12), "new"]
    assert history.hits >= 1


def test_empty_first_snapshot_then_gap_delivers_every_new_trade() -> None:
    filler = TradeBackfill(TICKER, None)
    assert filler.before_delivery(frame([], snapshot=True)) is None
    extra = filler.before_delivery(frame(hex_trades(tid(3), tid(2)), snapshot=True))
    assert ids(extra) == [tid(2), tid(3)]
