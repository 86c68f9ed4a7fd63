"""The comlink subset over real HTTP with ``requests``: paths, shapes, errors, 429, keep-alive."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests

from dydx_ws.emulator import IndexerEmulator
from dydx_ws.emulator.bech32 import is_dydx_address

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def http(emu: IndexerEmulator) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    yield session
    session.close()


def get(
    http: requests.Session, emu: IndexerEmulator, path: str, **params: Any
) -> requests.Response:
    return http.get(emu.rest_url + path, params=params, timeout=5)


def test_perpetual_markets(emu: IndexerEmulator, http: requests.Session) -> None:
    response = get(http, emu, "/v4/perpetualMarkets")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "public, max-age=1"
    markets = response.json()["markets"]
    assert list(markets) == ["BTC-USD", "ETH-USD"]
    btc = markets["BTC-USD"]
    assert list(btc) == [
        "clobPairId",
        "ticker",
        "status",
        "oraclePrice",
        "priceChange24H",
        "volume24H",
        "trades24H",
        "nextFundingRate",
        "initialMarginFraction",
        "maintenanceMarginFraction",
        "openInterest",
        "atomicResolution",
        "quantumConversionExponent",
        "tickSize",
        "stepSize",
        "stepBaseQuantums",
        "subticksPerTick",
        "marketType",
        "openInterestLowerCap",
        "openInterestUpperCap",
        "baseOpenInterest",
        "defaultFundingRate1H",
    ]
    assert (btc["tickSize"], btc["stepSize"], btc["atomicResolution"]) == ("1", "0.0001", -10)
    assert isinstance(btc["trades24H"], int) and isinstance(btc["oraclePrice"], str)
    one = get(http, emu, "/v4/perpetualMarkets", ticker="ETH-USD").json()["markets"]
    assert list(one) == ["ETH-USD"]
    assert list(get(http, emu, "/v4/perpetualMarkets", limit=1).json()["markets"]) == ["BTC-USD"]
    both = get(http, emu, "/v4/perpetualMarkets", ticker="BTC-USD", market="BTC-USD")
    assert both.status_code == 400
    assert both.json()["errors"][0]["msg"] == "Only one of ticker or market may be provided"
    missing = get(http, emu, "/v4/perpetualMarkets", ticker="FOO-USD")
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"msg": "FOO-USD not found in markets of type PERPETUAL"}]}


def test_orderbook(emu: IndexerEmulator, http: requests.Session) -> None:
    body = get(http, emu, "/v4/orderbooks/perpetualMarket/BTC-USD").json()
    assert list(body) == ["bids", "asks"]
    assert 50 <= len(body["bids"]) <= 100 and 50 <= len(body["asks"]) <= 100
    assert list(body["bids"][0]) == ["price", "size"]
    assert float(body["bids"][0]["price"]) < float(body["asks"][0]["price"])
    missing = get(http, emu, "/v4/orderbooks/perpetualMarket/FOO-USD")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["msg"] == "FOO-USD not found in markets of type PERPETUAL"
    assert get(http, emu, "/v4/orderbooks/perpetualMarkets/BTC-USD").status_code == 404


def test_trades_and_backfill(emu: IndexerEmulator, http: requests.Session) -> None:
    emu.pause()
    trades = get(http, emu, "/v4/trades/perpetualMarket/BTC-USD", limit=50).json()["trades"]
    assert len(trades) == 50
    assert list(trades[0]) == [
        "id",
        "side",
        "size",
        "price",
        "type",
        "createdAt",
        "createdAtHeight",
    ]
    heights = [int(t["createdAtHeight"]) for t in trades]
    assert heights == sorted(heights, reverse=True)
    for trade in trades:
        assert int(trade["id"][:8], 16) == int(trade["createdAtHeight"])
    below = min(heights) - 1
    older = get(
        http, emu, "/v4/trades/perpetualMarket/BTC-USD", createdBeforeOrAtHeight=below, limit=10
    ).json()["trades"]
    assert older and all(int(t["createdAtHeight"]) <= below for t in older)
    default = get(http, emu, "/v4/trades/perpetualMarket/BTC-USD").json()["trades"]
    assert len(default) > 50 and default[:50] == trades
    paged = get(http, emu, "/v4/trades/perpetualMarket/BTC-USD", limit=5, page=2).json()
    assert list(paged) == ["pageSize", "totalResults", "offset", "trades"]
    # with ``page`` comlink orders by eventId ASC (protocol.md §5.4): oldest first
    oldest_first = sorted(
        get(http, emu, "/v4/trades/perpetualMarket/BTC-USD", limit=1000).json()["trades"],
        key=lambda t: t["id"],
    )
    assert paged["totalResults"] == len(oldest_first)
    assert paged["trades"] == oldest_first[5:10]
    ids = [t["id"] for t in paged["trades"]]
    assert ids == sorted(ids)
    bad = get(http, emu, "/v4/trades/perpetualMarket/FOO-USD")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["msg"] == "ticker must be a valid ticker (BTC-USD, etc)"
    for limit in ("0", "1001", "abc"):
        bad = get(http, emu, "/v4/trades/perpetualMarket/BTC-USD", limit=limit)
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["msg"] == (
            "limit must be a positive integer that is not greater than max: 1000"
        )


def test_candles(emu: IndexerEmulator, http: requests.Session) -> None:
    emu.pause()
    candles = get(http, emu, "/v4/candles/perpetualMarkets/BTC-USD", resolution="1MIN").json()[
        "candles"
    ]
    assert len(candles) >= 2
    starts = [c["startedAt"] for c in candles]
    assert starts == sorted(starts, reverse=True)
    limited = get(
        http, emu, "/v4/candles/perpetualMarkets/BTC-USD", resolution="1MIN", limit=1
    ).json()["candles"]
    assert limited == candles[:1]
    newest = candles[0]["startedAt"]
    before = get(
        http, emu, "/v4/candles/perpetualMarkets/BTC-USD", resolution="1MIN", toISO=newest
    ).json()["candles"]
    assert before == candles[1:]
    since = get(
        http,
        emu,
        "/v4/candles/perpetualMarkets/BTC-USD",
        resolution="1MIN",
        fromISO=candles[1]["startedAt"],
    ).json()["candles"]
    assert since == candles[:2]
    for resolution in ("1MIN", "5MINS", "15MINS", "30MINS", "1HOUR", "4HOURS", "1DAY"):
        body = get(http, emu, "/v4/candles/perpetualMarkets/ETH-USD", resolution=resolution)
        assert body.status_code == 200 and body.json()["candles"][0]["resolution"] == resolution
    bad = get(http, emu, "/v4/candles/perpetualMarkets/BTC-USD")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["msg"] == (
        "resolution must be a valid Candle Resolution, one of "
        "1MIN,5MINS,15MINS,30MINS,1HOUR,4HOURS,1DAY"
    )
    bad = get(http, emu, "/v4/candles/perpetualMarkets/FOO-USD", resolution="1MIN")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["msg"] == "ticker must be a valid ticker (BTC-USD, etc)"


def test_height_and_time(emu: IndexerEmulator, http: requests.Session) -> None:
    height = get(http, emu, "/v4/height").json()
    assert list(height) == ["height", "time"] and height["height"].isdigit()
    assert height["time"].endswith("Z") and len(height["time"]) == 24
    time_response = get(http, emu, "/v4/time")
    assert time_response.headers["Cache-Control"] == "no-cache, no-store, no-transform"
    body = time_response.json()
    assert list(body) == ["iso", "epoch"] and isinstance(body["epoch"], float)


def test_demo_subaccounts(emu: IndexerEmulator, http: requests.Session) -> None:
    address = emu.demo_address
    assert is_dydx_address(address) and address.startswith("dydx1")
    body = get(http, emu, f"/v4/addresses/{address}/subaccountNumber/0").json()
    assert list(body) == ["subaccount"]
    sub = body["subaccount"]
    assert list(sub) == [
        "address",
        "subaccountNumber",
        "equity",
        "freeCollateral",
        "openPerpetualPositions",
        "assetPositions",
        "marginEnabled",
        "updatedAtHeight",
        "latestProcessedBlockHeight",
    ]
    assert sub["assetPositions"]["USDC"]["symbol"] == "USDC"
    for position in sub["openPerpetualPositions"].values():
        assert (position["side"] == "SHORT") == position["size"].startswith("-")
    parent = get(http, emu, f"/v4/addresses/{address}/parentSubaccountNumber/0").json()
    children = parent["subaccount"]["childSubaccounts"]
    assert [c["subaccountNumber"] for c in children] == [0, 128]
    assert list(parent["subaccount"]) == [
        "address",
        "parentSubaccountNumber",
        "equity",
        "freeCollateral",
        "childSubaccounts",
    ]
    everything = get(http, emu, f"/v4/addresses/{address}").json()
    assert [s["subaccountNumber"] for s in everything["subaccounts"]] == [0, 128]
    other = "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4"
    missing = get(http, emu, f"/v4/addresses/{other}/subaccountNumber/0")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["msg"] == (
        f"No subaccount found with address {other} and subaccountNumber 0"
    )
    assert get(http, emu, f"/v4/addresses/{address}/subaccountNumber/1").status_code == 404
    assert get(http, emu, f"/v4/addresses/{address}/subaccountNumber/128001").status_code == 400
    # comlink checks only the shape (alphanumeric, <= 90 characters); anything else is a 404
    assert get(http, emu, "/v4/addresses/foo/subaccountNumber/0").status_code == 404
    bad_checksum = address[:-1] + ("q" if address[-1] != "q" else "p")
    assert get(http, emu, f"/v4/addresses/{bad_checksum}/subaccountNumber/0").status_code == 404
    assert get(http, emu, f"/v4/addresses/{'a' * 90}/subaccountNumber/0").status_code == 404
    assert get(http, emu, f"/v4/addresses/{'a' * 91}/subaccountNumber/0").status_code == 400
    assert get(http, emu, "/v4/addresses/dydx1-x/subaccountNumber/0").status_code == 400
    assert get(http, emu, f"/v4/addresses/{address}/parentSubaccountNumber/128").status_code == 400


def test_orders(emu: IndexerEmulator, http: requests.Session) -> None:
    emu.pause()
    address = emu.demo_address
    everything = get(http, emu, "/v4/orders", address=address, subaccountNumber=0).json()
    assert isinstance(everything, list) and everything
    order = everything[0]
    for key in (
        "id",
        "subaccountId",
        "clientId",
        "clobPairId",
        "side",
        "size",
        "totalFilled",
        "price",
        "type",
        "status",
        "timeInForce",
        "reduceOnly",
        "orderFlags",
        "createdAtHeight",
        "postOnly",
        "ticker",
        "subaccountNumber",
    ):
        assert key in order
    open_orders = get(
        http,
        emu,
        "/v4/orders",
        address=address,
        subaccountNumber=0,
        status="OPEN,UNTRIGGERED,BEST_EFFORT_OPENED",
    ).json()
    assert all(o["status"] == "OPEN" for o in open_orders)
    filled = get(
        http, emu, "/v4/orders", address=address, subaccountNumber=0, status="filled"
    ).json()
    assert all(o["status"] == "FILLED" for o in filled)
    parent = get(
        http, emu, "/v4/orders/parentSubaccountNumber", address=address, parentSubaccountNumber=0
    ).json()
    assert {o["subaccountNumber"] for o in parent} <= {0, 128} and len(parent) >= len(everything)
    single = get(http, emu, f"/v4/orders/{order['id']}").json()
    assert single == order
    bad = get(http, emu, "/v4/orders", address=address, subaccountNumber=0, status="NOPE")
    assert bad.status_code == 400 and bad.json()["errors"][0]["msg"].startswith("status must be")


def test_orders_accept_every_api_order_status(emu: IndexerEmulator, http: requests.Session) -> None:
    # APIOrderStatus is OrderStatus (with ERROR) plus BEST_EFFORT_OPENED (protocol.md §3.9)
    address = emu.demo_address
    for status in (
        "OPEN",
        "FILLED",
        "CANCELED",
        "BEST_EFFORT_CANCELED",
        "UNTRIGGERED",
        "ERROR",
        "BEST_EFFORT_OPENED",
    ):
        response = get(http, emu, "/v4/orders", address=address, subaccountNumber=0, status=status)
        assert response.status_code == 200, (status, response.text)
        assert all(o["status"] == status for o in response.json())
    parent = get(
        http,
        emu,
        "/v4/orders/parentSubaccountNumber",
        address=address,
        parentSubaccountNumber=0,
        status="error",
    )
    assert parent.status_code == 200 and parent.json() == []


def test_order_lists_validate_alike(emu: IndexerEmulator, http: requests.Session) -> None:
    address = emu.demo_address
    cases = [
        ("/v4/orders", "subaccountNumber", "128001"),
        ("/v4/orders/parentSubaccountNumber", "parentSubaccountNumber", "128"),
    ]
    for path, param, too_big in cases:
        missing = get(http, emu, path, **{param: 0})
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["param"] == "address"
        big = get(http, emu, path, address=address, **{param: too_big})
        assert big.status_code == 400 and big.json()["errors"][0]["param"] == param
        other = get(
            http, emu, path, address="dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4", **{param: 0}
        )
        assert other.status_code == 404


def test_error_format_and_unknown_routes(emu: IndexerEmulator, http: requests.Session) -> None:
    response = get(http, emu, "/v4/nope")
    assert response.status_code == 404 and "Cannot GET /v4/nope" in response.text
    bad = get(
        http, emu, "/v4/trades/perpetualMarket/BTC-USD", limit="x", createdBeforeOrAtHeight="-1"
    )
    errors = bad.json()["errors"]
    assert len(errors) == 2
    assert list(errors[0]) == ["value", "msg", "param", "location"]


def test_keep_alive_reuses_one_connection(emu: IndexerEmulator, http: requests.Session) -> None:
    for _ in range(20):
        assert get(http, emu, "/v4/height").status_code == 200
    assert get(http, emu, "/v4/height").headers["Connection"] == "keep-alive"
    stats = emu.stats()
    assert stats["rest_connections"] == 1 and stats["rest_requests"] == 21


def test_reject_rest_429_with_retry_after_ms(emu: IndexerEmulator, http: requests.Session) -> None:
    emu.reject_rest(5.0)
    response = get(http, emu, "/v4/height")
    assert response.status_code == 429
    assert response.json() == {"errors": [{"msg": "Too many requests"}]}
    assert 4000 <= int(response.headers["Retry-After"]) <= 5001
    emu.reject_rest(0)
    assert get(http, emu, "/v4/height").status_code == 200


def test_rest_rate_limit(emu: IndexerEmulator, http: requests.Session) -> None:
    emu.set_rest_rate_limit(3, 30.0)
    statuses = [get(http, emu, "/v4/height") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[0].headers["RateLimit-Limit"] == "3"
    assert [r.headers["RateLimit-Remaining"] for r in statuses[:3]] == ["2", "1", "0"]
    assert int(statuses[3].headers["Retry-After"]) > 20000
    emu.set_rest_rate_limit(None)
    assert get(http, emu, "/v4/height").status_code == 200


def test_rest_helpers_match_http(emu: IndexerEmulator, http: requests.Session) -> None:
    emu.pause()
    assert (
        emu.rest_orderbook("ETH-USD")
        == get(http, emu, "/v4/orderbooks/perpetualMarket/ETH-USD").json()
    )
    assert emu.rest_subaccount(128)["subaccountNumber"] == 128
    status, body = emu.rest_get("/v4/height")
    assert status == 200 and body == get(http, emu, "/v4/height").json()
    assert emu.rest_markets()["BTC-USD"]["ticker"] == "BTC-USD"
    assert len(emu.rest_trades("BTC-USD", limit=3)) == 3
    assert emu.rest_candles("BTC-USD", "5MINS")[0]["resolution"] == "5MINS"
    assert json.dumps(emu.rest_height()) == json.dumps(get(http, emu, "/v4/height").json())
