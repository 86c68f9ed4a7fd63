"""Helpers for Redis stream tests: an ingest client with a RedisStreamSink, catching up."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import redis

from dydx_ws import DydxWebSocketClient, RedisStreamClient
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.sinks import RedisStreamSink
from tests.helpers.sdk_client import FAST_EMULATOR, make_client
from tests.helpers.waiting import wait_until


def emulator(seed: int = 11) -> IndexerEmulator:
    return IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=seed, **FAST_EMULATOR)


def ingest(
    emu: IndexerEmulator, url: str, **sink_options: Any
) -> Tuple[DydxWebSocketClient, RedisStreamSink]:
    client = make_client(emu)
    options: Dict[str, Any] = dict(flush_interval=0.02, checkpoint_interval=0.3)
    options.update(sink_options)
    sink = client.add_sink(RedisStreamSink(url, **options))
    assert isinstance(sink, RedisStreamSink)
    return client, sink


def stream_tip(url: str, stream: str) -> str:
    r = redis.Redis.from_url(url)
    try:
        last = r.xrevrange(stream, count=1)
        return last[0][0].decode() if last else "0-0"
    finally:
        r.close()


def caught_up(
    consumer: RedisStreamClient, url: str, streams: List[str], timeout: float = 30
) -> None:
    """Wait until ``consumer`` has read every stream to its tip and delivered everything."""

    def done() -> bool:
        info = consumer.stats()["redis"]["streams"]
        return all(info.get(s, {}).get("last_id") == stream_tip(url, s) for s in streams)

    wait_until(done, timeout=timeout, interval=0.05)
    assert consumer.drain(30)


def entries(url: str, stream: str) -> List[Tuple[str, Dict[bytes, bytes]]]:
    r = redis.Redis.from_url(url)
    try:
        return [(i.decode(), f) for i, f in r.xrange(stream)]
    finally:
        r.close()


def quiesce(emu: IndexerEmulator, *clients: DydxWebSocketClient) -> None:
    """Stop the emulator's data and wait until ``clients`` applied every frame it sent: a
    marker frame sent after the last data arrives last on each socket."""
    emu.pause()
    emu.flush()
    emu.send_raw('{"type":"connected","connection_id":"quiesced","message_id":0}')
    for client in clients:
        wait_until(lambda c=client: c.stats()["connection_id"] == "quiesced", timeout=30)
        assert client.drain(30)
