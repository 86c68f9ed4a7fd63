"""Snapshot-then-stream, batching (global flush, grouping), snapshot delay, channel contents."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import Raw, StreamBook
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def collect_until_height(
    raw: Raw,
    stop: Callable[[Dict[str, Any]], bool],
    on: Callable[[Dict[str, Any]], None],
    timeout: float = 15,
) -> None:
    raw.recv_until(lambda m: (on(m), stop(m))[1], timeout)


def settle(emu: IndexerEmulator, raw: Raw, book: StreamBook, ticker: str) -> None:
    """Pause the simulator, flush everything, and apply what is left on the wire."""
    emu.pause()
    emu.flush()
    conn_id = emu.subscriptions()[0][0]
    emu.send_raw(json.dumps({"type": "marker", "connection_id": conn_id}))
    raw.recv_until(
        lambda m: (book.apply(m) if m.get("id") == ticker else None, m["type"] == "marker")[1], 10
    )


@pytest.mark.parametrize("batched", [False, True])
def test_stream_rebuilds_the_rest_book(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw], batched: bool
) -> None:
    emu = make_emu(block_time=0.02)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": batched})
    book = StreamBook()
    updates = 0

    def on(message: Dict[str, Any]) -> None:
        nonlocal updates
        if message.get("channel") == "v4_orderbook":
            book.apply(message)
            if message["type"] == "channel_batch_data":
                updates += len(message["contents"])
            elif message["type"] == "channel_data":
                updates += 1

    collect_until_height(raw, lambda m: updates >= 30, on)
    settle(emu, raw, book, "BTC-USD")
    rest = emu.rest_orderbook("BTC-USD")
    assert len(rest["bids"]) >= 50 and len(rest["asks"]) >= 50
    assert book.as_rest() == rest


def test_snapshot_is_the_rest_book_and_sorted(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    emu.pause()
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": "ETH-USD"})
    contents = raw.recv_type("subscribed")["contents"]
    assert contents == emu.rest_orderbook("ETH-USD")
    bids = [float(level["price"]) for level in contents["bids"]]
    asks = [float(level["price"]) for level in contents["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(level["size"] != "0" for level in contents["bids"] + contents["asks"])


def test_batched_subscribers_only_get_batches(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": 1})
    raw.send({"type": "subscribe", "channel": "v4_markets", "batched": "yes"})
    kinds: List[Dict[str, Any]] = []
    raw.recv_until(lambda m: (kinds.append(m), len(kinds) >= 12)[1], 10)
    data = [m for m in kinds if m["type"] not in ("subscribed",)]
    assert data and all(m["type"] == "channel_batch_data" for m in data)
    for message in data:
        assert isinstance(message["contents"], list) and message["contents"]
        if message["channel"] == "v4_markets":
            assert "id" not in message
        else:
            assert all(len(c) == 1 for c in message["contents"])


def test_batches_are_grouped_by_child_subaccount(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(block_time=0.02, batch_interval=0.3)
    topic = f"{emu.demo_address}/0"
    plain, batched = raw_clients(emu.ws_url), raw_clients(emu.ws_url)
    plain.connected()
    batched.connected()
    emu.pause()
    plain.send({"type": "subscribe", "channel": "v4_parent_subaccounts", "id": topic})
    batched.send(
        {"type": "subscribe", "channel": "v4_parent_subaccounts", "id": topic, "batched": True}
    )
    plain.recv_type("subscribed")
    batched.recv_type("subscribed")
    emu.advance(150)
    emu.flush()
    emu.send_raw('{"type":"marker"}')
    expected: Dict[int, List[Any]] = {0: [], 128: []}
    got: Dict[int, List[Any]] = {0: [], 128: []}
    messages: List[Dict[str, Any]] = []

    def on_plain(m: Dict[str, Any]) -> bool:
        if m["type"] == "channel_data":
            expected[m["subaccountNumber"]].append(m["contents"])
        return m["type"] == "marker"

    def on_batched(m: Dict[str, Any]) -> bool:
        if m["type"] == "channel_batch_data":
            messages.append(m)
            got[m["subaccountNumber"]].extend(m["contents"])
        return m["type"] == "marker"

    plain.recv_until(on_plain, 10)
    batched.recv_until(on_batched, 10)
    assert expected[0] and expected[128]
    assert got == expected
    # one global flush covered the whole burst: one message per child subaccount
    assert sorted(m["subaccountNumber"] for m in messages) == [0, 128]
    for message in messages:
        assert list(message)[-1] == "subaccountNumber"


def test_batch_groups_by_version_then_subaccount(
    emu: IndexerEmulator, client: Callable[..., Raw]
) -> None:
    raw = client()
    raw.connected()
    emu.pause()
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD", "batched": True})
    raw.recv_type("subscribed")
    socks = emu.socks

    def inject() -> None:
        key = ("v4_trades", "ETH-USD")
        socks.seq += 1
        items = [
            ("2.1.0", '{"n":1}', None),
            ("9.9.9", '{"n":2}', None),
            ("2.1.0", '{"n":3}', 1),
            ("2.1.0", '{"n":4}', None),
        ]
        for version, contents, number in items:
            socks.seq += 1
            socks.buffer.setdefault(key, []).append((socks.seq, version, contents, number))
        socks.flush_batches()

    emu._call(inject)
    got = [raw.recv_type("channel_batch_data") for _ in range(3)]
    assert [(m["version"], m.get("subaccountNumber"), m["contents"]) for m in got] == [
        ("2.1.0", None, [{"n": 1}, {"n": 4}]),
        ("2.1.0", 1, [{"n": 3}]),
        ("9.9.9", None, [{"n": 2}]),
    ]


def test_snapshot_delay_reorders_ids_and_drops_data_of_the_window(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(block_time=0.02)
    raw = raw_clients(emu.ws_url)
    conn_id = raw.connected()["connection_id"]
    raw.send({"type": "subscribe", "channel": "v4_block_height"})
    raw.recv_type("subscribed")
    emu.set_snapshot_delay(0.5)
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})
    wait_until(lambda: emu.height > 0)
    assert (conn_id, "v4_trades", "BTC-USD") not in emu.subscriptions()
    before: List[Dict[str, Any]] = []
    subscribed = raw.recv_until(lambda m: (before.append(m), m["type"] == "subscribed")[1], 5)
    assert subscribed["message_id"] == 2
    heights = [m for m in before if m.get("channel") == "v4_block_height"]
    assert heights and all(m["message_id"] > 2 for m in heights)  # larger ids came first
    assert not any(m.get("channel") == "v4_trades" for m in before[:-1])
    newest = subscribed["contents"]["trades"][0]["id"]
    first = raw.recv_type("channel_data", channel="v4_trades", timeout=10)
    assert first["message_id"] > heights[-1]["message_id"]
    # trades produced during the delay are neither in the snapshot nor delivered
    snapshot_height = int(newest[:8], 16)
    first_height = int(first["contents"]["trades"][0]["id"][:8], 16)
    assert first_height > snapshot_height
    delivered_after = int(heights[-1]["contents"]["blockHeight"])
    assert first_height > delivered_after - 1


def test_markets_channel_oracle_and_trading_diffs(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(trading_interval=0.2)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    markets = raw.recv_type("subscribed")["contents"]["markets"]
    assert list(markets) == ["BTC-USD", "ETH-USD"]
    assert list(markets["BTC-USD"])[:4] == ["clobPairId", "ticker", "status", "oraclePrice"]
    oracle = raw.recv_until(lambda m: "oraclePrices" in m.get("contents", {}))["contents"]
    price = next(iter(oracle["oraclePrices"].values()))
    assert list(price) == ["oraclePrice", "effectiveAt", "effectiveAtHeight", "marketId"]
    trading = raw.recv_until(lambda m: "trading" in m.get("contents", {}))["contents"]["trading"]
    diff = next(iter(trading.values()))
    assert next(iter(diff)) == "id" and len(diff) > 1


def test_candles_snapshot_and_updates(emu: IndexerEmulator, client: Callable[..., Raw]) -> None:
    raw = client()
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_candles", "id": "BTC-USD/1MIN"})
    candles = raw.recv_type("subscribed")["contents"]["candles"]
    assert candles and candles[0]["startedAt"] >= candles[-1]["startedAt"]
    assert list(candles[0]) == [
        "startedAt",
        "ticker",
        "resolution",
        "low",
        "high",
        "open",
        "close",
        "baseTokenVolume",
        "usdVolume",
        "trades",
        "startingOpenInterest",
        "orderbookMidPriceOpen",
        "orderbookMidPriceClose",
    ]
    update = raw.recv_type("channel_data", timeout=10)["contents"]
    assert update["ticker"] == "BTC-USD" and update["resolution"] == "1MIN"
    assert isinstance(update["trades"], int)


def test_subaccount_stream_has_lifecycles(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(block_time=0.01)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_subaccounts", "id": f"{emu.demo_address}/0"})
    snapshot = raw.recv_type("subscribed")["contents"]
    assert list(snapshot) == ["subaccount", "orders", "blockHeight"]
    assert snapshot["subaccount"]["subaccountNumber"] == 0
    seen: Dict[str, int] = {}
    statuses = set()

    def on(m: Dict[str, Any]) -> bool:
        for key in m.get("contents", {}):
            seen[key] = seen.get(key, 0) + 1
        for order in m.get("contents", {}).get("orders", []):
            statuses.add(order["status"])
        return {"fills", "orders", "perpetualPositions", "assetPositions", "transfers"} <= set(
            seen
        ) and {"OPEN", "FILLED"} <= statuses

    raw.recv_until(on, 30)
    assert "blockHeight" in seen
