"""ParquetSink -> files -> dydx_ws.history, against the emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import List

import pandas as pd
import pyarrow.parquet as pq

from dydx_ws import history
from dydx_ws.replay import offline_client
from dydx_ws.sinks import ParquetSink
from tests.helpers.sdk_client import Recorder, make_client
from tests.helpers.waiting import wait_until
from tests.sinks.stream_support import emulator, quiesce


def _parts(root: Path) -> List[Path]:
    return sorted(root.rglob("*.parquet"))


def test_tables_read_back_with_row_counts_equal_to_what_was_received(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with emulator() as emu:
        client = make_client(emu)
        sink = client.add_sink(ParquetSink(str(root), rotate_seconds=0.5, flush_interval=0.05))
        rec = Recorder()
        client.subscribe_trades("BTC-USD", rec)
        client.subscribe_orderbook("BTC-USD", rec)
        client.subscribe_markets(rec)
        client.subscribe_block_height(rec)
        client.subscribe_candles("BTC-USD", "1MIN", rec)
        client.subscribe_subaccount(emu.demo_address, 0, rec)
        client.start()
        rec.wait(lambda: rec.count(("v4_trades", "BTC-USD")) >= 5, timeout=60)
        wait_until(lambda: sink.stats()["files"] >= 2, timeout=30)  # rotated by time
        quiesce(emu, client)
        assert client.stop(10)
    files = _parts(root)
    assert all("channel=" in str(p.parent.parent) and "date=" in p.parent.name for p in files)
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    trades = history.read(root, "v4_trades")
    expected = [t for m in rec.messages[("v4_trades", "BTC-USD")] for t in m.trades]
    assert len(trades) == len(expected)
    assert list(trades["trade_id"]) == [t.id for t in expected]
    assert trades["price"].dtype == "float64"
    assert trades["price"].tolist() == [float(t.price) for t in expected]
    assert isinstance(trades, pd.DataFrame) and str(trades["received_at"].dt.tz) == "UTC"
    book = history.read(root, "v4_orderbook", numeric=False)
    msgs = rec.messages[("v4_orderbook", "BTC-USD")]
    assert len(book) == sum(len(m.bids) + len(m.asks) for m in msgs)
    assert book["is_snapshot"].sum() == sum(
        len(m.bids) + len(m.asks) for m in msgs if m.is_snapshot
    )
    blocks = history.read(root, "v4_block_height")
    heights = [m.height for k, v in rec.messages.items() if k[0] == "v4_block_height" for m in v]
    assert heights and list(blocks["block_height"]) == heights
    total = sum(len(v) for v in rec.messages.values())
    raw = pq.read_table(root / "channel=frames")
    assert raw.num_rows == total
    assert len(history.read(root, "v4_subaccounts")) > 0
    assert len(history.read(root, "v4_markets")) > 0
    as_polars = history.read(root, "v4_trades", engine="polars")
    assert (
        as_polars.height == len(expected)
        and as_polars["price"].to_list() == trades["price"].tolist()
    )
    day = trades["received_at"].iloc[0].date()
    assert len(history.read(root, "v4_trades", day, day)) == len(expected)
    assert len(history.read(root, "v4_trades", day + timedelta(days=1))) == 0
    after = trades["received_at"].iloc[len(trades) // 2].to_pydatetime()
    assert len(history.read(root, "v4_trades", after)) == (trades["received_at"] >= after).sum()
    summary = history.summary(root)
    assert summary["v4_trades"]["rows"] == len(expected)


def test_record_to_parquet_then_replay_gives_the_live_books(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with emulator() as emu:
        client = make_client(emu)
        client.add_sink(ParquetSink(str(root), flush_interval=0.05))
        client.subscribe_orderbook("BTC-USD")
        client.subscribe_orderbook("ETH-USD")
        client.subscribe_markets()
        rec = Recorder()
        client.subscribe_trades("BTC-USD", rec)
        client.start()
        wait_until(lambda: client.stats()["messages_per_channel"]["v4_orderbook"] >= 100, 60)
        quiesce(emu, client)
        assert client.stop(10)
    replayed = offline_client()
    replayed.subscribe_orderbook("BTC-USD")
    replayed.subscribe_orderbook("ETH-USD")
    replayed.subscribe_markets()
    got = Recorder()
    replayed.subscribe_trades("BTC-USD", got)
    try:
        result = history.replay(root, replayed)
        assert result.messages == sum(client.stats()["messages_per_channel"].values())
        for ticker in ("BTC-USD", "ETH-USD"):
            live, again = client.order_book(ticker), replayed.order_book(ticker)
            assert again.bids == live.bids and again.asks == live.asks and len(live) > 0
        assert replayed.markets == client.markets
        assert [m.trades for m in got.messages[("v4_trades", "BTC-USD")]] == [
            m.trades for m in rec.messages[("v4_trades", "BTC-USD")]
        ]
    finally:
        replayed.stop()


WRITER = textwrap.dedent(
    """
    import sys, time
    from dydx_ws import DydxWebSocketClient
    from dydx_ws.sinks import ParquetSink
    url, root = sys.argv[1:3]
    client = DydxWebSocketClient(url=url, check_interval=None)
    client.add_sink(ParquetSink(root, rotate_seconds=0.2, flush_interval=0.02, batch_size=20))
    client.subscribe_orderbook("BTC-USD")
    client.subscribe_trades("BTC-USD")
    client.start()
    while True:
        time.sleep(1)
    """
)


def test_kill_9_of_the_writer_leaves_only_complete_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    with emulator() as emu:
        proc = subprocess.Popen([sys.executable, str(script), emu.ws_url, str(root)], env=env)
        try:
            wait_until(lambda: len(_parts(root)) >= 4, timeout=60)
            wait_until(lambda: list(root.rglob(".*.tmp")), timeout=30)  # mid-file
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
    for part in _parts(root):
        assert not part.name.startswith(".")
        pq.read_table(part)  # every visible file is complete (a footer, readable)
    book = history.read(root, "v4_orderbook")  # the temporary leftovers are ignored
    assert len(book) > 0
    assert json.loads(history.read(root, "frames", numeric=False)["raw"].iloc[0])["type"]
