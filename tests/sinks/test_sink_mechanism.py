"""The sink mechanism against the emulator: frames reach a sink on its own thread, a blocked sink
never holds up callbacks, overflow and failed writes are counted and reported, stop flushes."""

from __future__ import annotations

import threading
from typing import List

from dydx_ws.emulator import IndexerEmulator
from dydx_ws.events import ErrorEvent
from dydx_ws.sinks import Sink, SinkFrame
from tests.helpers.sdk_client import FAST_EMULATOR, Recorder, make_client
from tests.helpers.waiting import wait_until


class ListSink(Sink):
    """Keeps every frame; ``gate`` (when cleared) blocks write(); ``fail`` makes writes raise."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.frames: List[SinkFrame] = []
        self.threads: set = set()  # type: ignore[type-arg]
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.gaps = 0
        self.closed = False

    def write(self, batch: List[SinkFrame]) -> None:
        self.threads.add(threading.current_thread().name)
        self.gate.wait()
        if self.fail:
            raise ConnectionError("store down")
        self.frames.extend(batch)

    def on_gap(self, unseen: bool) -> None:
        self.gaps += 1

    def close(self) -> None:
        self.closed = True


def _emulator() -> IndexerEmulator:
    return IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, **FAST_EMULATOR)


def test_every_frame_reaches_the_sink_on_its_own_thread_and_stop_flushes() -> None:
    with _emulator() as emu:
        client = make_client(emu)
        sink = client.add_sink(ListSink(name="list", flush_interval=0.05))
        rec = Recorder()
        client.subscribe_trades("BTC-USD", rec)
        client.subscribe_orderbook("BTC-USD", rec)
        client.start()
        rec.wait(lambda: rec.count() >= 30, timeout=30)
        assert client.stop(10)
        assert isinstance(sink, ListSink)
        assert sink.closed
        assert sink.threads == {"dydx-ws-sink-list"}
        stats = client.stats()["sinks"]["list"]
        assert stats["received"] == stats["written"] == len(sink.frames) == client.stats()["frames"]
        data = [f for f in sink.frames if f.is_data]
        assert {f.key for f in data} == {("v4_trades", "BTC-USD"), ("v4_orderbook", "BTC-USD")}
        assert all(f.connection and f.received_at > 0 and f.raw.startswith("{") for f in data)
        # every data message the callbacks saw was in the sink, in the same order per key
        book_ids = [f.obj["message_id"] for f in data if f.channel == "v4_orderbook" and f.obj]
        delivered = [m.message_id for m in rec.messages[("v4_orderbook", "BTC-USD")]]
        assert book_ids[: len(delivered)] == delivered


def test_a_sink_gets_the_message_the_callbacks_got_not_a_second_parse() -> None:
    """The I/O side hands each frame's decoded message to the sink (channel, id, contents), the
    very object the callbacks receive; the Redis sink's shadow state leaves it untouched (a
    callback's ``msg.book`` stays the client's own book)."""
    with _emulator() as emu:
        client = make_client(emu)
        sink = client.add_sink(ListSink(name="list", flush_interval=0.05))
        rec = Recorder()
        client.subscribe_orderbook("BTC-USD", rec)
        client.start()
        rec.wait(lambda: rec.count() >= 20, timeout=30)
        assert client.stop(10)
        assert isinstance(sink, ListSink)
        book = [f for f in sink.frames if f.channel == "v4_orderbook"]
        delivered = rec.messages[("v4_orderbook", "BTC-USD")]
        assert len(book) >= len(delivered) >= 20
        assert all(f.message is m for f, m in zip(book, delivered))  # the same objects
        assert all(f.type == m.type and f.key == m.key for f, m in zip(book, delivered))


def test_blocked_sink_leaves_callbacks_running_and_overflow_is_counted_and_reported() -> None:
    with _emulator() as emu:
        client = make_client(emu)
        sink = ListSink(name="stuck", queue_size=20, batch_size=5, flush_interval=0.01)
        sink.gate.clear()  # the sink's write blocks until released
        client.add_sink(sink)
        errors: List[ErrorEvent] = []
        client.on("error", errors.append)
        rec = Recorder()
        client.subscribe_orderbook("BTC-USD", rec)
        client.subscribe_trades("BTC-USD", rec)
        client.start()
        rec.wait(lambda: rec.count() >= 5, timeout=30)
        wait_until(lambda: client.stats()["sinks"]["stuck"]["dropped"] > 0, timeout=30)
        before = rec.count()
        rec.wait(lambda: rec.count() >= before + 20, timeout=30)  # callbacks keep receiving
        assert client.stats()["sinks"]["stuck"]["queue_depth"] <= 20
        wait_until(lambda: any(e.kind == "sink" and "lost" in e.message for e in errors), 30)
        sink.gate.set()
        wait_until(lambda: sink.gaps > 0, timeout=30)
        assert client.stop(10)
        stats = client.stats()["sinks"]["stuck"]
        assert stats["received"] == stats["written"] + stats["dropped"]


def test_failed_writes_are_retried_then_dropped_counted_and_reported() -> None:
    with _emulator() as emu:
        client = make_client(emu)
        sink = ListSink(name="flaky", max_retries=2, retry_delay=0.01, flush_interval=0.01)
        sink.fail = True
        client.add_sink(sink)
        errors: List[ErrorEvent] = []
        client.on("error", errors.append)
        rec = Recorder()
        client.subscribe_trades("BTC-USD", rec)
        client.start()
        wait_until(lambda: client.stats()["sinks"]["flaky"]["failed"] > 0, timeout=30)
        stats = client.stats()["sinks"]["flaky"]
        assert stats["retries"] >= 2 and "store down" in (stats["last_error"] or "")
        wait_until(lambda: any(e.kind == "sink" and "giving up" in e.message for e in errors), 30)
        sink.fail = False
        n = len(sink.frames)
        wait_until(lambda: len(sink.frames) > n, timeout=30)  # recovers with later batches
        assert sink.gaps >= 1
        assert client.stop(10)


def test_stop_is_bounded_with_a_dead_sink() -> None:
    with _emulator() as emu:
        client = make_client(emu)
        sink = ListSink(name="dead")
        sink.gate.clear()
        client.add_sink(sink)
        rec = Recorder()
        client.subscribe_trades("BTC-USD", rec)
        client.start()
        rec.wait(lambda: rec.count() >= 1, timeout=30)
        wait_until(lambda: sink.threads, timeout=30)
        assert client.stop(1.0) is False  # reported, not hung
        sink.gate.set()
