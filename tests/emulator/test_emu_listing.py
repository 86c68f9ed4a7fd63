"""Listing and delisting while the emulator runs: ``list_market`` publishes ender's full trading
object on ``v4_markets`` and the market then trades; socks refuses it for ``listing_delay``;
``delist_market`` publishes the status and the market goes quiet, its subscriptions staying open.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import pytest
import requests

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import Raw
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(60)

# ender's TradingPerpetualMarketMessage, in its key order on the wire
TRADING_KEYS = [
    "id",
    "clobPairId",
    "ticker",
    "marketId",
    "status",
    "quantumConversionExponent",
    "atomicResolution",
    "subticksPerTick",
    "stepBaseQuantums",
    "marketType",
    "initialMarginFraction",
    "maintenanceMarginFraction",
    "openInterestLowerCap",
    "openInterestUpperCap",
    "tickSize",
    "stepSize",
    "priceChange24H",
    "volume24H",
    "trades24H",
    "nextFundingRate",
    "openInterest",
    "baseOpenInterest",
    "defaultFundingRate1H",
]


def is_trading_update(message: Dict[str, Any], ticker: str) -> bool:
    return (
        message["type"] == "channel_data"
        and message["channel"] == "v4_markets"
        and ticker in message["contents"].get("trading", {})
    )


def markets_subscriber(emu: IndexerEmulator, raw_clients: Callable[[str], Raw]) -> Raw:
    raw = raw_clients(emu.ws_url)
    raw.connected()
    raw.send({"type": "subscribe", "channel": "v4_markets"})
    raw.recv_type("subscribed", channel="v4_markets")
    return raw


def subscribe(raw: Raw, channel: str, sub_id: str) -> Dict[str, Any]:
    """Send a subscribe; return its reply (``subscribed`` for it, or an error)."""
    raw.send({"type": "subscribe", "channel": channel, "id": sub_id})
    return raw.recv_until(
        lambda m: m["type"] == "error" or (m["type"] == "subscribed" and m.get("id") == sub_id),
        timeout=10,
    )


def test_list_market_publishes_the_full_trading_object_then_trades(
    emu: IndexerEmulator, raw_clients: Callable[[str], Raw]
) -> None:
    watcher = markets_subscriber(emu, raw_clients)
    emu.list_market("NEW-USD")
    assert emu.markets == ("BTC-USD", "ETH-USD", "NEW-USD") == emu.active_markets
    update = watcher.recv_until(lambda m: is_trading_update(m, "NEW-USD"), timeout=10)
    assert list(update["contents"]) == ["trading"]
    market = update["contents"]["trading"]["NEW-USD"]
    assert list(market) == TRADING_KEYS
    assert market["ticker"] == "NEW-USD" and market["status"] == "ACTIVE"
    assert market["id"] == market["clobPairId"] == "2" and market["marketId"] == 2
    rest = requests.get(emu.rest_url + "/v4/perpetualMarkets", timeout=5).json()["markets"]
    assert list(rest) == ["BTC-USD", "ETH-USD", "NEW-USD"]
    assert rest["NEW-USD"]["status"] == "ACTIVE"
    assert rest["NEW-USD"]["tickSize"] == market["tickSize"]
    one = requests.get(emu.rest_url + "/v4/perpetualMarkets?ticker=NEW-USD", timeout=5).json()
    assert list(one["markets"]) == ["NEW-USD"]

    raw = raw_clients(emu.ws_url)
    raw.connected()
    book = subscribe(raw, "v4_orderbook", "NEW-USD")
    assert book["type"] == "subscribed"
    assert book["contents"]["bids"] and book["contents"]["asks"]
    assert subscribe(raw, "v4_trades", "NEW-USD")["type"] == "subscribed"
    assert subscribe(raw, "v4_candles", "NEW-USD/1MIN")["type"] == "subscribed"
    raw.recv_type("channel_data", timeout=10, channel="v4_orderbook", id="NEW-USD")
    trades = raw.recv_type("channel_data", timeout=10, channel="v4_trades", id="NEW-USD")
    assert trades["contents"]["trades"]
    raw.recv_type("channel_data", timeout=10, channel="v4_candles", id="NEW-USD/1MIN")
    oracle = watcher.recv_until(
        lambda m: "NEW-USD" in m.get("contents", {}).get("oraclePrices", {}), timeout=10
    )
    assert oracle["contents"]["oraclePrices"]["NEW-USD"]["marketId"] == 2


def test_listing_delay_refuses_the_new_ticker_then_accepts_it(
    make_emu: Callable[..., IndexerEmulator], raw_clients: Callable[[str], Raw]
) -> None:
    emu = make_emu(listing_delay=0.6)
    raw = raw_clients(emu.ws_url)
    raw.connected()
    listed_at = time.monotonic()
    emu.list_market("NEW-USD")
    refused = subscribe(raw, "v4_orderbook", "NEW-USD")
    assert refused == {
        "type": "error",
        "message": "Invalid subscription id for channel: (v4_orderbook-NEW-USD)",
        "connection_id": refused["connection_id"],
        "message_id": refused["message_id"],
    }
    assert subscribe(raw, "v4_trades", "NEW-USD")["message"] == (
        "Invalid subscription id for channel: (v4_trades-NEW-USD)"
    )
    assert subscribe(raw, "v4_candles", "NEW-USD/1MIN")["message"] == (
        "Invalid subscription id for channel: (v4_candles-NEW-USD/1MIN)"
    )
    # comlink reads the database: REST has the market at once
    assert requests.get(emu.rest_url + "/v4/perpetualMarkets/NEW-USD", timeout=5).ok

    def accepted() -> Optional[Dict[str, Any]]:
        reply = subscribe(raw, "v4_orderbook", "NEW-USD")
        return reply if reply["type"] == "subscribed" else None

    # refused ids never reach the subscribe rate limiter, so retrying is safe
    snapshot = wait_until(accepted, timeout=10, interval=0.05)
    assert time.monotonic() - listed_at >= 0.6
    assert snapshot["contents"]["bids"]
    raw.recv_type("channel_data", timeout=10, channel="v4_orderbook", id="NEW-USD")
    assert emu.connection_count() == 1


def test_delist_publishes_the_status_and_the_market_goes_quiet(
    emu: IndexerEmulator, raw_clients: Callable[[str], Raw]
) -> None:
    raw = markets_subscriber(emu, raw_clients)
    for channel, sub_id in (
        ("v4_orderbook", "ETH-USD"),
        ("v4_trades", "ETH-USD"),
        ("v4_candles", "ETH-USD/1MIN"),
        ("v4_orderbook", "BTC-USD"),
    ):
        assert subscribe(raw, channel, sub_id)["type"] == "subscribed"
    raw.recv_type("channel_data", timeout=10, channel="v4_trades", id="ETH-USD")
    emu.delist_market("ETH-USD")
    assert emu.markets == ("BTC-USD", "ETH-USD") and emu.active_markets == ("BTC-USD",)
    update = raw.recv_until(lambda m: is_trading_update(m, "ETH-USD"), timeout=10)
    market = update["contents"]["trading"]["ETH-USD"]
    assert list(market) == TRADING_KEYS and market["status"] == "FINAL_SETTLEMENT"
    # frames of one connection keep their order: after the update, ETH-USD is silent while
    # BTC-USD goes on (40 updates: several blocks)
    btc = 0
    while btc < 40:
        message = raw.recv(10)
        assert message.get("id") not in ("ETH-USD", "ETH-USD/1MIN"), message
        if message.get("id") == "BTC-USD" and message["type"] == "channel_data":
            btc += 1
        if message["channel"] == "v4_markets" and message["type"] == "channel_data":
            assert "ETH-USD" not in message["contents"].get("oraclePrices", {})
    rest = requests.get(emu.rest_url + "/v4/perpetualMarkets?ticker=ETH-USD", timeout=5).json()
    assert rest["markets"]["ETH-USD"]["status"] == "FINAL_SETTLEMENT"
    # the server closes nothing: the subscriptions stay registered and the connection open
    ids = {(channel, sub_id) for _, channel, sub_id in emu.subscriptions()}
    assert {("v4_orderbook", "ETH-USD"), ("v4_trades", "ETH-USD")} <= ids
    assert emu.connection_count() == 1


def test_a_delisted_market_can_still_be_subscribed_and_keeps_its_book(
    emu: IndexerEmulator, raw_clients: Callable[[str], Raw]
) -> None:
    emu.delist_market("ETH-USD", status="PAUSED")
    frozen = emu.rest_orderbook("ETH-USD")
    assert frozen["bids"] and frozen["asks"]
    raw = raw_clients(emu.ws_url)
    raw.connected()
    book = subscribe(raw, "v4_orderbook", "ETH-USD")
    assert book["type"] == "subscribed" and book["contents"] == frozen
    assert subscribe(raw, "v4_trades", "ETH-USD")["contents"]["trades"]
    height = emu.height
    wait_until(lambda: emu.height >= height + 5)
    assert emu.rest_orderbook("ETH-USD") == frozen
    emu.delist_market("ETH-USD")  # a further status change is published too
    assert emu.rest_markets()["ETH-USD"]["status"] == "FINAL_SETTLEMENT"


def test_list_and_delist_before_start() -> None:
    emu = IndexerEmulator(markets=2, block_time=0.05, warmup_blocks=10)
    emu.list_market("NEW-USD")
    emu.delist_market("BTC-USD")
    assert emu.active_markets == ("ETH-USD", "NEW-USD")
    with emu:
        markets = emu.rest_markets()
        assert markets["NEW-USD"]["status"] == "ACTIVE"
        assert markets["BTC-USD"]["status"] == "FINAL_SETTLEMENT"


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda e: e.list_market("btc-usd"), "not a perpetual ticker: 'btc-usd'"),
        (lambda e: e.list_market("NEW"), "not a perpetual ticker: 'NEW'"),
        (lambda e: e.list_market(""), "not a perpetual ticker: ''"),
        (lambda e: e.list_market(5), "not a perpetual ticker: 5"),
        (lambda e: e.list_market("BTC-USD"), "market 'BTC-USD' is already listed (status ACTIVE)"),
        (lambda e: e.delist_market("NOPE-USD"), "unknown market 'NOPE-USD'"),
        (lambda e: e.delist_market(None), "ticker must be a str, got None"),
        (lambda e: e.delist_market("BTC-USD", "ACTIVE"), "got 'ACTIVE'"),
        (lambda e: e.delist_market("BTC-USD", "final_settlement"), "status must be one of"),
        (lambda e: e.delist_market("BTC-USD", None), "status must be one of"),
    ],
)
def test_bad_listing_arguments_raise_and_the_emulator_lives_on(
    emu: IndexerEmulator, call: Callable[[IndexerEmulator], None], text: str
) -> None:
    with pytest.raises(ValueError) as info:
        call(emu)
    assert text in str(info.value)
    height = emu.height
    wait_until(lambda: emu.height > height)
    assert emu.markets == ("BTC-USD", "ETH-USD") == emu.active_markets


def test_delisting_twice_with_the_same_status_raises(emu: IndexerEmulator) -> None:
    emu.delist_market("ETH-USD")
    with pytest.raises(ValueError, match="market 'ETH-USD' is already FINAL_SETTLEMENT"):
        emu.delist_market("ETH-USD")
    with pytest.raises(ValueError, match=r"already listed \(status FINAL_SETTLEMENT\)"):
        emu.list_market("ETH-USD")


def test_every_market_can_be_delisted(emu: IndexerEmulator) -> None:
    """With no market trading, blocks (height, demo account) still come."""
    emu.delist_market("BTC-USD")
    emu.delist_market("ETH-USD")
    assert emu.active_markets == ()
    height = emu.height
    wait_until(lambda: emu.height >= height + 5)
    emu.list_market("SOL-USD")
    wait_until(lambda: emu.rest_trades("SOL-USD"))


def test_listing_delay_is_checked() -> None:
    for bad in (-1, "1", True, float("nan")):
        with pytest.raises(ValueError, match="listing_delay must be a number >= 0"):
            IndexerEmulator(listing_delay=bad)


def test_listed_market_count_is_bounded() -> None:
    emu = IndexerEmulator(markets=5000, warmup_blocks=0, book_levels=1, max_book_levels=2)
    with pytest.raises(ValueError, match="at most 5000 markets"):
        emu.list_market("ZZZZZZ-USD")
