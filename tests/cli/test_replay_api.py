"""The replay API (``dydx_ws.replay``): recordings round-trip, and replayed frames go through the
client's decode → dispatch → state → callback path with their recorded receive times."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from dydx_ws import DydxWebSocketClient, Message, OrderbookMessage
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.replay import (
    RecordedFrame,
    Recorder,
    ReplaySource,
    read_frames,
    record,
    replay,
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("rec") / "all.jsonl.gz"
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=5, block_time=0.2) as emu:
        a = emu.demo_address
        topics = [
            ("v4_orderbook", "BTC-USD"),
            ("v4_trades", "BTC-USD"),
            ("v4_candles", "BTC-USD/1MIN"),
            ("v4_markets", None),
            ("v4_block_height", None),
            ("v4_subaccounts", f"{a}/0"),
            ("v4_parent_subaccounts", f"{a}/0"),
        ]
        n = record(emu.ws_url, topics, path, count=80, duration=30)
    assert n >= 80
    yield path


def _client_threads() -> set:
    return {t for t in threading.enumerate() if t.name.startswith("dydx-ws")}


def _data_frames(path: Path) -> List[dict]:
    out = []
    for f in read_frames(path):
        obj = json.loads(f.data)
        if obj.get("type") in ("subscribed", "channel_data", "channel_batch_data"):
            obj["_at"] = f.received_at
            out.append(obj)
    return out


def test_recorder_round_trip_plain_and_gzip(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl.gz"):
        path = tmp_path / name
        with Recorder(path, url="ws://x", subscriptions=[("v4_markets", None)]) as rec:
            rec.write('{"type":"connected"}', 1.5)
            rec.write(b'{"type":"x"}', 2.5)
            rec.write({"type": "y"})
        frames = list(read_frames(path))
        assert [f.data for f in frames[:2]] == ['{"type":"connected"}', '{"type":"x"}']
        assert [f.received_at for f in frames[:2]] == [1.5, 2.5]
        assert json.loads(frames[2].data) == {"type": "y"} and frames[2].received_at > 1e9
        assert ReplaySource(path).header["url"] == "ws://x"
    with gzip.open(tmp_path / "b.jsonl.gz", "rt") as f:
        assert json.loads(f.readline())["dydx_ws_recording"] == 1


def test_recording_covers_every_channel(recording: Path) -> None:
    channels = {d["channel"] for d in _data_frames(recording)}
    assert "v4_orderbook" in channels and "v4_block_height" in channels
    keys = ReplaySource(recording).topics()
    assert len(keys) == 7 and len(set(keys)) == 7  # header keys normalised, no duplicates


def test_replay_into_client_keeps_order_timestamps_and_state(recording: Path) -> None:
    frames = _data_frames(recording)
    seen: List[Message] = []
    lock = threading.Lock()

    def on_message(msg: Message) -> None:
        with lock:
            seen.append(msg)

    before = _client_threads()
    client = DydxWebSocketClient(url="ws://offline.invalid/v4/ws", workers=2)
    try:
        client.subscribe_orderbook("BTC-USD", on_message)
        client.subscribe_block_height(on_message)
        result = replay(recording, client, speed=0)
        assert not client.connected
        book_frames = [d for d in frames if d["channel"] == "v4_orderbook"]
        got_book = [m for m in seen if isinstance(m, OrderbookMessage)]
        # every order book frame, in wire order, with its recorded receive time
        assert [m.message_id for m in got_book] == [d["message_id"] for d in book_frames]
        assert [m.received_at for m in got_book] == [d["_at"] for d in book_frames]
        assert got_book[0].is_snapshot and got_book[-1].book is client.order_book("BTC-USD")
        book = client.order_book("BTC-USD")
        assert book.best_bid is not None and book.best_ask is not None
        assert book.best_bid.price < book.best_ask.price
        assert result.per_channel["v4_orderbook"] == len(book_frames)
        assert result.decode_errors == 0 and not result.interrupted
        # topics nobody subscribed to were not routed to anyone
        assert {m.channel for m in seen} == {"v4_orderbook", "v4_block_height"}
    finally:
        assert client.stop(timeout=5)
    assert _client_threads() <= before


def test_replay_to_callbacks_builds_every_state(recording: Path) -> None:
    per_channel: dict = {}

    def on_message(msg: Message) -> None:
        per_channel[msg.channel] = per_channel.get(msg.channel, 0) + 1

    before = _client_threads()
    result = replay(ReplaySource(recording), on_message)
    assert per_channel == result.per_channel
    assert len(per_channel) == 7
    client = result.client
    assert client is not None
    assert client.markets  # the markets state was built from the snapshot
    address = next(k[1] for k in ReplaySource(recording).topics() if k[0] == "v4_subaccounts")
    addr, number = address.split("/")
    assert client.subaccount(addr, int(number)).equity is not None
    assert _client_threads() <= before


def test_replay_per_channel_mapping(recording: Path) -> None:
    heights: List[int] = []
    replay(recording, {"v4_block_height": lambda m: heights.append(m.height)})
    assert heights and heights == sorted(heights)


def test_speed_paces_and_stop_interrupts() -> None:
    base = time.time()
    frames = [
        RecordedFrame(
            base + i * 0.1,
            json.dumps(
                {
                    "type": "channel_data" if i else "subscribed",
                    "connection_id": "c",
                    "message_id": i + 1,
                    "channel": "v4_block_height",
                    "id": "v4_block_height",
                    "contents": {"height": str(100 + i), "time": "2024-01-01T00:00:00.000Z"}
                    if not i
                    else {"blockHeight": str(100 + i), "time": "2024-01-01T00:00:00.000Z"},
                }
            ),
        )
        for i in range(6)
    ]
    heights: List[int] = []
    start = time.monotonic()
    result = replay(frames, lambda m: heights.append(m.height), speed=2.0)
    took = time.monotonic() - start
    assert heights == [100, 101, 102, 103, 104, 105]
    assert took >= 0.24  # 0.5 s recorded at 2x
    assert result.recorded_span == pytest.approx(0.5)

    stop = threading.Event()
    stop.set()
    result = replay(frames, lambda m: None, speed=1.0, stop=stop)
    assert result.interrupted and result.frames == 0


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ReplaySource(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError):
        ReplaySource([], speed=-1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nope": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        list(read_frames(bad))


def test_replay_refuses_a_connected_client(recording: Path) -> None:
    with IndexerEmulator(markets=["BTC-USD"]) as emu:
        client = DydxWebSocketClient(network=emu.network)
        try:
            client.start()
            assert client.wait_connected(10)
            with pytest.raises(ValueError, match="connected"):
                replay(recording, client)
        finally:
            client.stop()


def test_record_goes_on_across_a_reconnect(tmp_path: Path) -> None:
    """record() uses the client's frame tap: a dropped connection is restored and recorded."""
    path = tmp_path / "reconnect.jsonl.gz"
    before = _client_threads()
    with IndexerEmulator(markets=["BTC-USD"], seed=2, block_time=0.1) as emu:
        dropped, restored = threading.Event(), threading.Event()

        def on_frame(frame: RecordedFrame) -> None:  # the client's I/O thread
            if not dropped.is_set() and '"channel_data"' in frame.data:
                dropped.set()  # drop from another thread: this one must keep reading
                threading.Thread(target=emu.drop_connections, daemon=True).start()
            elif dropped.is_set() and '"subscribed"' in frame.data:
                restored.set()  # the snapshot after the reconnect is in the file

        n = record(
            emu.ws_url, [("v4_block_height", None)], path, duration=30, on_frame=on_frame,
            stop=restored,
        )  # fmt: skip
    assert restored.is_set()
    types = [json.loads(f.data)["type"] for f in read_frames(path)]
    assert n == len(types)
    assert types.count("connected") == 2 and types.count("subscribed") == 2, types
    heights: List[int] = []
    replay(path, {"v4_block_height": lambda m: heights.append(m.height)})
    assert len(heights) == sum(t in ("subscribed", "channel_data") for t in types)
    assert heights == sorted(heights)
    assert _client_threads() <= before


def test_record_unreachable_leaves_no_file(tmp_path: Path) -> None:
    import socket

    from dydx_ws import DydxConnectionError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "never.jsonl"
    with pytest.raises(DydxConnectionError, match="cannot connect"):
        record(f"ws://127.0.0.1:{port}/v4/ws", [("v4_markets", None)], path, connect_timeout=0.5)
    assert not path.exists()


def test_replay_does_not_change_a_sources_speed() -> None:
    source = ReplaySource([], speed=2.0)
    replay(source, lambda m: None, speed=0)
    assert source.speed == 2.0
