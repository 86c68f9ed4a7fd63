"""``IndexerEmulator(markets=N)``: the mainnet-sized ticker list, every market served over REST
and the stream, quiet markets taking turns (a block's cost stays bounded), and the channel limit
of a connection that subscribes to more than 32 of them."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Dict, List, Set, Tuple

import pytest
import requests
import websocket

from dydx_ws.emulator import EmulatorConfig, IndexerEmulator
from dydx_ws.emulator.markets import KNOWN_PRICES, is_ticker
from dydx_ws.emulator.simulator import MarketSimulator
from dydx_ws.emulator.tickers import MAX_MARKETS, market_tickers
from tests.helpers.raw_ws import Raw
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(120)
T0 = 1_760_000_000.0


class Collector:
    """Reads one raw connection on a thread and records every ``(channel, id)`` it got data for
    (``channel_data`` or ``channel_batch_data``), and every error text."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.data: Set[Tuple[str, str]] = set()
        self.subscribed: Set[Tuple[str, str]] = set()
        self.errors: List[str] = []
        self.closed = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = json.loads(self.raw.recv_text(0.2))
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError):
                self.closed = True
                return
            with self._lock:
                kind = message["type"]
                if kind in ("channel_data", "channel_batch_data"):
                    self.data.add((message["channel"], message.get("id", "")))
                elif kind == "subscribed":
                    self.subscribed.add((message["channel"], message.get("id", "")))
                elif kind == "error":
                    self.errors.append(message["message"])

    def seen(self) -> Set[Tuple[str, str]]:
        with self._lock:
            return set(self.data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_count_gives_unique_deterministic_mainnet_tickers() -> None:
    tickers = market_tickers(300)
    assert tickers[:3] == ("BTC-USD", "ETH-USD", "SOL-USD")
    assert tickers[:2] == EmulatorConfig().markets  # small counts start with the defaults
    assert set(tickers[: len(KNOWN_PRICES)]) == set(KNOWN_PRICES)
    assert len(set(tickers)) == 300 and all(is_ticker(t) and t.endswith("-USD") for t in tickers)
    assert market_tickers(300) == tickers and market_tickers(7) == tickers[:7]
    everything = market_tickers(MAX_MARKETS)
    assert len(set(everything)) == MAX_MARKETS and all(is_ticker(t) for t in everything)
    assert everything[:300] == tickers
    assert IndexerEmulator(markets=3, warmup_blocks=0).markets == tickers[:3]


@pytest.mark.parametrize(
    ("markets", "text"),
    [
        (True, "a count or a sequence of tickers"),
        (False, "a count or a sequence of tickers"),
        (0, "a market count must be 1..5000, got 0"),
        (-3, "a market count must be 1..5000, got -3"),
        (MAX_MARKETS + 1, "a market count must be 1..5000, got 5001"),
        (10**9, "a market count must be 1..5000"),
        ("BTC-USD", "got the string 'BTC-USD' (use ['BTC-USD'] for one market)"),
        (2.5, "a count or a sequence of tickers, got 2.5"),
        (None, "a count or a sequence of tickers, got None"),
        ([], "markets must be a non-empty sequence of tickers"),
        (["BTC-USD", "BTC-USD"], "duplicate market 'BTC-USD'"),
        (["btc-usd"], "not a perpetual ticker: 'btc-usd'"),
    ],
)
def test_bad_markets_raise_value_error(markets: Any, text: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        IndexerEmulator(markets=markets, warmup_blocks=0)
    assert text in str(info.value)


def test_a_sequence_still_works() -> None:
    emu = IndexerEmulator(markets=["ETH-USD", "AAVE-USD"], warmup_blocks=0)
    assert emu.markets == ("ETH-USD", "AAVE-USD") == emu.active_markets


def test_300_markets_in_rest_and_in_the_markets_snapshot(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(markets=300)
    assert len(emu.markets) == 300
    body = requests.get(emu.rest_url + "/v4/perpetualMarkets", timeout=10).json()
    assert list(body["markets"]) == list(emu.markets)
    assert {m["status"] for m in body["markets"].values()} == {"ACTIVE"}
    assert len({m["clobPairId"] for m in body["markets"].values()}) == 300
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    snapshot = raw.recv_type("subscribed", channel="v4_markets")
    assert list(snapshot["contents"]["markets"]) == list(emu.markets)
    last = emu.markets[-1]
    book = requests.get(f"{emu.rest_url}/v4/orderbooks/perpetualMarket/{last}", timeout=10)
    assert book.status_code == 200 and book.json()["bids"] and book.json()["asks"]


def test_every_one_of_300_markets_streams_book_and_trades(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    """Subscribed to all 300 order books and trades (30 markets per connection), data arrives
    from every market within seconds, although most of them are quiet."""
    emu = make_emu(markets=300, block_time=0.1)
    collectors: List[Collector] = []
    try:
        for start in range(0, 300, 30):
            raw = raw_clients(emu.ws_url)
            raw.connected()
            for ticker in emu.markets[start : start + 30]:
                raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": ticker})
                raw.send({"type": "subscribe", "channel": "v4_trades", "id": ticker})
            collectors.append(Collector(raw))
        wanted = {(c, t) for t in emu.markets for c in ("v4_orderbook", "v4_trades")}

        def missing() -> Set[Tuple[str, str]]:
            seen: Set[Tuple[str, str]] = set()
            for collector in collectors:
                seen |= collector.seen()
            return wanted - seen

        wait_until(lambda: not missing(), timeout=30, interval=0.1)
        assert not any(c.errors or c.closed for c in collectors)
    finally:
        for collector in collectors:
            collector.stop()


def _markets_in(pubs: List[Any], *channels: str) -> Set[str]:
    channels = channels or ("v4_orderbook", "v4_trades")
    return {p.id for p in pubs if p.channel in channels}


def test_a_block_trades_at_most_markets_per_block_and_every_market_gets_a_turn() -> None:
    """The bound on a block's cost: with 300 markets a block trades in at most 32 of them (the
    first 8 every time, the others in turns of 24, each turn with a trade), so every market
    trades within any 13 blocks (292 / 24, rounded up)."""
    sim = MarketSimulator(EmulatorConfig(markets=300, warmup_blocks=0), T0)
    hot = set(sim.tickers[:8])
    blocks: List[Set[str]] = []
    for block in range(39):
        pubs = sim.step(T0 + 1 + block)
        assert hot <= _markets_in(pubs, "v4_orderbook")
        traded = _markets_in(pubs, "v4_trades")
        assert len(traded) <= 32 and len(traded - hot) == 24
        blocks.append(traded)
    for start in range(0, 39 - 13 + 1):
        window: Set[str] = set().union(*blocks[start : start + 13])
        assert window >= set(sim.tickers[8:])


def test_up_to_markets_per_block_every_market_trades_every_block() -> None:
    sim = MarketSimulator(EmulatorConfig(markets=32, warmup_blocks=0), T0)
    for block in range(5):
        assert _markets_in(sim.step(T0 + 1 + block), "v4_orderbook") == set(sim.tickers)
    narrow = MarketSimulator(EmulatorConfig(markets=5, markets_per_block=2, warmup_blocks=0), T0)
    seen: Set[str] = set()
    for block in range(4):
        traded = _markets_in(narrow.step(T0 + 1 + block), "v4_trades")
        assert len(traded - {"BTC-USD"}) == 1  # BTC-USD every block, one other in turn
        seen |= traded
    assert seen >= set(narrow.tickers[1:])


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "8"])
def test_markets_per_block_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="markets_per_block must be an integer >= 1"):
        IndexerEmulator(markets_per_block=bad)


def test_a_subscribe_beyond_32_markets_gets_the_limit_error_and_the_connection_stays_open(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(markets=300)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    for ticker in emu.markets[:33]:
        raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": ticker})
    replies: List[Dict[str, Any]] = []
    while len(replies) < 33:
        message = raw.recv(10)
        if message["type"] in ("subscribed", "error"):
            replies.append(message)
    errors = [m for m in replies if m["type"] == "error"]
    assert len(errors) == 1
    assert errors[0] == {
        "type": "error",
        "message": "Per-connection subscription limit reached for v4_orderbook (limit=32).",
        "connection_id": errors[0]["connection_id"],
        "message_id": 33,
    }
    assert sorted(m["id"] for m in replies if m["type"] == "subscribed") == sorted(emu.markets[:32])
    # not followed by a close: the 33rd market on another channel works, the books stream on
    raw.send({"type": "subscribe", "channel": "v4_trades", "id": emu.markets[32]})
    assert raw.recv_type("subscribed", timeout=10, channel="v4_trades")["id"] == emu.markets[32]
    raw.recv_type("channel_data", timeout=10, channel="v4_orderbook")
    assert emu.connection_count() == 1
