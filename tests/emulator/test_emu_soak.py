"""20 concurrent raw clients for 60 s on fast blocks: every rebuilt book equals the REST book."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Dict, List, Optional

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import Raw, StreamBook

CLIENTS = 20
DURATION = 60.0
MARKETS = ("BTC-USD", "ETH-USD")


class SoakClient(threading.Thread):
    def __init__(self, url: str, index: int, demo: str) -> None:
        super().__init__(name=f"soak-client-{index}", daemon=True)
        self.url = url
        self.index = index
        self.demo = demo
        self.books = {ticker: StreamBook() for ticker in MARKETS}
        self.problems: List[str] = []
        self.messages = 0
        self.heights: List[int] = []
        self.subscribed = 0
        self.done = threading.Event()
        self.raw: Optional[Raw] = None

    def run(self) -> None:
        try:
            self.raw = raw = Raw(self.url, timeout=10)
            raw.connected()
            batched = self.index % 2 == 1
            for ticker in MARKETS:
                raw.send(
                    {
                        "type": "subscribe",
                        "channel": "v4_orderbook",
                        "id": ticker,
                        "batched": batched,
                    }
                )
            raw.send({"type": "subscribe", "channel": "v4_block_height"})
            raw.send(
                {
                    "type": "subscribe",
                    "channel": "v4_trades",
                    "id": MARKETS[self.index % 2],
                    "batched": not batched,
                }
            )
            if self.index % 4 == 0:
                raw.send(
                    {
                        "type": "subscribe",
                        "channel": "v4_parent_subaccounts",
                        "id": f"{self.demo}/0",
                    }
                )
            last_ids: Dict[Any, int] = {}  # message ids only grow within one subscription (§1.5)
            while True:
                message: Dict[str, Any] = json.loads(raw.recv_text(timeout=30))
                if message["type"] == "marker":
                    return
                self.messages += 1
                if message["type"] == "error":
                    self.problems.append(f"error: {message}")
                    continue
                topic = (message["channel"], message.get("id"))
                if message["message_id"] <= last_ids.get(topic, 0):
                    self.problems.append(f"message_id regression {message['message_id']}")
                last_ids[topic] = message["message_id"]
                channel = message["channel"]
                if message["type"] == "subscribed":
                    self.subscribed += 1
                if channel == "v4_orderbook":
                    self.books[message["id"]].apply(message)
                elif channel == "v4_block_height" and message["type"] == "channel_data":
                    self.heights.append(int(message["contents"]["blockHeight"]))
        except Exception as exc:  # reported by the test
            self.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()


@pytest.mark.timeout(180)
def test_twenty_clients_sixty_seconds_consistent() -> None:
    emu = IndexerEmulator(markets=list(MARKETS), seed=11, block_time=0.05)
    emu.start()
    clients = [SoakClient(emu.ws_url, i, emu.demo_address) for i in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        started = time.monotonic()
        stop = threading.Event()
        while time.monotonic() - started < DURATION:
            stop.wait(1.0)
            dead = [c for c in clients if c.done.is_set()]
            assert not dead, [c.problems for c in dead]
        assert emu.connection_count() == CLIENTS
        height = emu.pause()
        emu.flush()
        emu.send_raw('{"type":"marker"}')
        for client in clients:
            assert client.done.wait(60), f"client {client.index} did not finish"
        rest = {ticker: emu.rest_orderbook(ticker) for ticker in MARKETS}
        stats = emu.stats()
    finally:
        for client in clients:
            if client.raw is not None:
                client.raw.close()
        emu.stop()
    assert stats["messages_published"] > 0
    for client in clients:
        assert client.problems == [], (client.index, client.problems[:5])
        assert client.subscribed == 4 + (client.index % 4 == 0)
        for ticker in MARKETS:
            assert client.books[ticker].as_rest() == rest[ticker], (client.index, ticker)
        heights = client.heights
        assert heights == list(range(heights[0], heights[0] + len(heights)))
        assert heights[-1] == height
        assert len(heights) > DURATION / 0.05 * 0.5  # at least half the nominal block rate
