"""RedisStreamSink -> real Redis -> RedisStreamClient, against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, List

import redis

from dydx_ws import RedisStreamClient
from dydx_ws.events import ResyncEvent
from tests.helpers.redis_server import RedisServer
from tests.helpers.sdk_client import Recorder
from tests.helpers.waiting import wait_until
from tests.sinks.stream_support import caught_up, emulator, entries, ingest, quiesce

BOOK = "dydx:v4_orderbook:BTC-USD"
TRADES = "dydx:v4_trades:BTC-USD"


def test_streams_hold_every_frame_capped_with_checkpoints(redis_server: RedisServer) -> None:
    with emulator() as emu:
        client, sink = ingest(emu, redis_server.url, maxlen=50)
        rec = Recorder()
        client.subscribe_orderbook("BTC-USD", rec)
        client.subscribe_trades("BTC-USD", rec)
        client.start()
        wait_until(lambda: sink.stats()["checkpoints"] >= 4, timeout=30)
        rec.wait(lambda: rec.count(("v4_orderbook", "BTC-USD")) >= 120, timeout=60)
        assert client.stop(10)
    book = entries(redis_server.url, BOOK)
    assert 50 <= len(book) < 120  # MAXLEN ~ 50 trimmed the oldest
    kinds = {f[b"k"] for _, f in book}
    assert b"c" in kinds and b"f" in kinds
    seqs = [int(f[b"s"]) for _, f in book]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    frames = [json.loads(f[b"d"]) for _, f in book if f[b"k"] == b"f"]
    delivered = [m.message_id for m in rec.messages[("v4_orderbook", "BTC-USD")]]
    assert [f["message_id"] for f in frames] == delivered[-len(frames) :]
    stats = client.stats()["sinks"]["redis"]
    assert stats["written"] == stats["received"] and stats["dropped"] == 0


def test_consumer_started_mid_stream_has_the_ingest_book(redis_server: RedisServer) -> None:
    with emulator() as emu:
        client, sink = ingest(emu, redis_server.url)
        rec = Recorder()
        client.subscribe_orderbook("BTC-USD", rec)
        client.subscribe_markets(rec)
        client.start()
        wait_until(lambda: sink.stats()["checkpoints"] >= 3, timeout=30)
        consumer = RedisStreamClient(redis_server.url)
        got = Recorder()
        sub = consumer.subscribe_orderbook("BTC-USD", got)
        consumer.subscribe_markets(got)
        consumer.start()
        assert sub.wait_subscribed(30)
        first = got.messages[("v4_orderbook", "BTC-USD")][0]
        assert first.is_snapshot  # started from a checkpoint, not from the stream's beginning
        assert first.message_id > rec.messages[("v4_orderbook", "BTC-USD")][0].message_id
        got.wait(lambda: got.count(("v4_orderbook", "BTC-USD")) >= 20, timeout=30)
        quiesce(emu, client)
        assert client.stop(10)
        caught_up(consumer, redis_server.url, [BOOK, "dydx:v4_markets"])
        mine, theirs = consumer.order_book("BTC-USD"), client.order_book("BTC-USD")
        assert mine.bids == theirs.bids and mine.asks == theirs.asks and len(mine) > 0
        assert mine.last_message_id == theirs.last_message_id
        assert consumer.markets.keys() == client.markets.keys()
        btc = consumer.markets["BTC-USD"]
        assert btc.oracle_price == client.markets["BTC-USD"].oracle_price
        assert consumer.stop(10)


def test_redis_restart_is_a_reported_gap_and_resync(redis_server: RedisServer) -> None:
    with emulator() as emu:
        client, sink = ingest(emu, redis_server.url, retry_delay=0.05)
        rec = Recorder()
        client.subscribe_orderbook("BTC-USD", rec)
        client.start()
        consumer = RedisStreamClient(redis_server.url)
        events: List[Any] = []
        for name in ("disconnected", "connected", "reconnected", "resync"):
            consumer.on(name, lambda e, n=name: events.append((n, e)))
        got = Recorder()
        consumer.subscribe_orderbook("BTC-USD", got)
        consumer.start()
        got.wait(lambda: got.count() >= 10, timeout=30)
        redis_server.restart()  # no persistence: everything in Redis is lost
        wait_until(lambda: sink.stats()["redis_restarts"] >= 1, timeout=30)
        wait_until(lambda: any(n == "reconnected" for n, _ in events), timeout=30)
        names = [n for n, _ in events]
        assert "disconnected" in names
        gaps = [e for n, e in events if n == "resync"]
        assert gaps and all(isinstance(e, ResyncEvent) for e in gaps)
        assert gaps[0].detail[0][0] == "stream_gap"
        n = got.count()
        got.wait(lambda: got.count() >= n + 10, timeout=30)  # flowing again
        quiesce(emu, client)
        assert client.stop(10)
        caught_up(consumer, redis_server.url, [BOOK])
        mine, theirs = consumer.order_book("BTC-USD"), client.order_book("BTC-USD")
        assert not mine.stale
        assert mine.bids == theirs.bids and mine.asks == theirs.asks
        assert consumer.stop(10)


def test_ingest_restart_is_reported_never_bridged(redis_server: RedisServer) -> None:
    with emulator() as emu:
        first, _sink1 = ingest(emu, redis_server.url)
        first.subscribe_orderbook("BTC-USD")
        first.start()
        consumer = RedisStreamClient(redis_server.url)
        gaps: List[ResyncEvent] = []
        consumer.on("resync", gaps.append)
        got = Recorder()
        consumer.subscribe_orderbook("BTC-USD", got)
        consumer.start()
        got.wait(lambda: got.count() >= 5, timeout=30)
        assert first.stop(10)
        second, sink2 = ingest(emu, redis_server.url)
        second.subscribe_orderbook("BTC-USD")
        second.start()
        wait_until(lambda: gaps, timeout=30)
        assert "restarted" in gaps[0].detail[0][1]
        wait_until(lambda: sink2.stats()["written"] > 20, timeout=30)
        quiesce(emu, second)
        assert second.stop(10)
        caught_up(consumer, redis_server.url, [BOOK])
        mine, theirs = consumer.order_book("BTC-USD"), second.order_book("BTC-USD")
        assert mine.bids == theirs.bids and mine.asks == theirs.asks
        assert consumer.stop(10)


CONSUMER = textwrap.dedent(
    """
    import json, os, sys, time
    from dydx_ws import RedisStreamClient
    url, out, stop_file = sys.argv[1:4]
    seen = {}
    def on(msg):
        seen.setdefault(msg.channel, []).append(msg.message_id)
    c = RedisStreamClient(url)
    c.subscribe_orderbook("BTC-USD", on)
    c.subscribe_trades("BTC-USD", on)
    c.start()
    open(out + ".ready", "w").close()
    while not os.path.exists(stop_file):
        time.sleep(0.05)
    import redis
    r = redis.Redis.from_url(url)
    streams = ["dydx:v4_orderbook:BTC-USD", "dydx:v4_trades:BTC-USD"]
    tips = {s: r.xrevrange(s, count=1)[0][0].decode() for s in streams}
    deadline = time.time() + 30
    while time.time() < deadline:
        info = c.stats()["redis"]["streams"]
        if all(info.get(s, {}).get("last_id") == tips[s] for s in streams):
            break
        time.sleep(0.05)
    c.drain(30)
    c.stop(10)
    json.dump(seen, open(out, "w"))
    """
)


def test_two_consumer_processes_see_every_message_once_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    stop_file = tmp_path / "stop"
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), redis_server.url, str(o), str(stop_file)], env=env
        )
        for o in outs
    ]
    try:
        wait_until(lambda: all(Path(str(o) + ".ready").exists() for o in outs), timeout=60)
        with emulator() as emu:
            client, _sink = ingest(emu, redis_server.url)
            rec = Recorder()
            client.subscribe_orderbook("BTC-USD", rec)
            client.subscribe_trades("BTC-USD", rec)
            client.start()
            rec.wait(lambda: rec.count(("v4_trades", "BTC-USD")) >= 5, timeout=60)
            rec.wait(lambda: rec.count(("v4_orderbook", "BTC-USD")) >= 50, timeout=60)
            assert client.stop(10)
        stop_file.touch()
        for p in procs:
            assert p.wait(90) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    expected = {
        "v4_orderbook": [m.message_id for m in rec.messages[("v4_orderbook", "BTC-USD")]],
        "v4_trades": [m.message_id for m in rec.messages[("v4_trades", "BTC-USD")]],
    }
    for out in outs:
        seen = json.loads(out.read_text())
        assert seen == expected


def test_consumer_group_shares_the_work(redis_server: RedisServer) -> None:
    with emulator() as emu:
        client, sink = ingest(emu, redis_server.url)
        rec = Recorder()
        client.subscribe_trades("BTC-USD", rec)
        client.start()
        wait_until(lambda: sink.stats()["checkpoints"] >= 1, timeout=30)
        members = [RedisStreamClient(redis_server.url, group="g", consumer=f"c{i}") for i in (1, 2)]
        recs = [Recorder(), Recorder()]
        for member, r in zip(members, recs):
            member.subscribe_trades("BTC-USD", r)
            member.start()
        n = rec.count()
        rec.wait(lambda: rec.count() >= n + 30, timeout=60)
        assert client.stop(10)
        frames = [
            json.loads(f[b"d"]) for _, f in entries(redis_server.url, TRADES) if f[b"k"] == b"f"
        ]
        stream_ids = [f["message_id"] for f in frames]
        r = redis.Redis.from_url(redis_server.url)
        tip = r.xrevrange(TRADES, count=1)[0][0]

        def group_done() -> bool:
            (info,) = r.xinfo_groups(TRADES)
            return bool(info["last-delivered-id"] == tip and info["pending"] == 0)

        wait_until(group_done, timeout=30)
        r.close()
        for member in members:
            assert member.drain(30)

        def data_ids(rec: Recorder) -> List[int]:
            return [
                m.message_id for m in rec.messages[("v4_trades", "BTC-USD")] if not m.is_snapshot
            ]

        a, b = data_ids(recs[0]), data_ids(recs[1])
        assert not set(a) & set(b)  # each entry went to one member
        assert a and b  # both did some of the work
        assert sorted(a + b) == stream_ids[-len(a + b) :]  # together: every entry since joining
        for member in members:
            assert member.stop(10)


def test_consumer_mid_stream_gets_the_ingest_subaccount_and_block(
    redis_server: RedisServer,
) -> None:
    with emulator() as emu:
        client, sink = ingest(emu, redis_server.url)
        addr = emu.demo_address
        client.subscribe_subaccount(addr, 0)
        client.subscribe_block_height()
        client.start()
        wait_until(lambda: sink.stats()["checkpoints"] >= 4, timeout=30)
        consumer = RedisStreamClient(redis_server.url)
        got = Recorder()
        sub = consumer.subscribe_subaccount(addr, 0, got)
        consumer.subscribe_block_height(got)
        consumer.start()
        assert sub.wait_subscribed(30)
        quiesce(emu, client)
        assert client.stop(10)
        stream = f"dydx:v4_subaccounts:{addr}/0"
        caught_up(consumer, redis_server.url, [stream, "dydx:v4_block_height"])
        first = got.messages[("v4_subaccounts", f"{addr}/0")][0]
        assert first.is_snapshot and first.connection_id  # loaded from a checkpoint
        mine, theirs = consumer.subaccount(addr, 0), client.subaccount(addr, 0)
        assert mine.open_orders == theirs.open_orders
        assert mine.positions == theirs.positions
        assert mine.asset_positions == theirs.asset_positions
        assert mine.block_height == theirs.block_height
        heights = [
            m.height for k, v in got.messages.items() if k[0] == "v4_block_height" for m in v
        ]
        assert heights and heights == sorted(heights)
        assert consumer.stop(10)


def test_the_sinks_shadow_state_leaves_the_callbacks_messages_alone(
    redis_server: RedisServer,
) -> None:
    """The Redis sink applies the I/O side's own decoded messages to its shadow state: every
    book message a callback gets still carries the client's book, never the shadow's."""
    with emulator() as emu:
        client, sink = ingest(emu, redis_server.url)
        rec = Recorder()
        client.subscribe_orderbook("BTC-USD", rec)
        client.start()
        rec.wait(lambda: rec.count() >= 30, timeout=30)
        quiesce(emu, client)
        wait_until(lambda: sink.stats()["written"] == sink.stats()["received"], timeout=30)
        book = client.order_book("BTC-USD")
        messages = rec.messages[("v4_orderbook", "BTC-USD")]
        assert all(m.book is book for m in messages)
        assert client.stop(10)
