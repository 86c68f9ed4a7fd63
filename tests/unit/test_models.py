"""Model semantics: Decimal/datetime/int conversions, open enums, schema(), batch merging."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from dydx_ws import (
    BlockHeightMessage,
    CandleResolution,
    MarketsMessage,
    OrderbookMessage,
    ParentSubaccountMessage,
    SubaccountMessage,
    TradesMessage,
    decode_message,
)
from dydx_ws.models import Candle, OrderSide, PerpetualMarket, Trade, parse_timestamp

TRADE = {
    "id": "014206cf0000000200000002",
    "side": "BUY",
    "size": "0.01",
    "price": "3392.9",
    "type": "LIMIT",
    "createdAt": "2024-07-24T19:12:35.705Z",
    "createdAtHeight": "21104335",
}


def _frame(channel: str, mtype: str, contents: object, **extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "type": mtype,
        "connection_id": "c",
        "message_id": 7,
        "channel": channel,
        "version": "1.0.0",
        "contents": contents,
        **extra,
    }


def test_trade_types_are_exact() -> None:
    t = Trade.from_dict(TRADE)
    assert t.price == Decimal("3392.9") and isinstance(t.size, Decimal)
    assert t.created_at == datetime(2024, 7, 24, 19, 12, 35, 705000, tzinfo=timezone.utc)
    assert t.created_at_height == 21104335
    assert t.to_dict()["createdAt"] == "2024-07-24T19:12:35.705Z"
    assert t.to_dict()["createdAtHeight"] == "21104335"


def test_unknown_enum_values_are_kept_and_serialised() -> None:
    t = Trade.from_dict({**TRADE, "side": "SIDEWAYS", "type": "BRAND_NEW"})
    assert t.side == "SIDEWAYS" and t.side.value == "SIDEWAYS"
    assert isinstance(t.side, OrderSide)
    assert '"side": "SIDEWAYS"' in t.to_json()
    assert Trade.from_dict(t.to_dict()) == t


def test_irregular_wire_names_are_mapped() -> None:
    m = PerpetualMarket.from_dict(
        {
            "ticker": "BTC-USD",
            "priceChange24H": "1.5",
            "trades24H": 3,
            "defaultFundingRate1H": "0.0001",
            "unknownNewField": 1,
        }
    )
    assert (m.price_change_24h, m.trades_24h) == (Decimal("1.5"), 3)
    assert m.default_funding_rate_1h == Decimal("0.0001")
    assert m.to_dict()["priceChange24H"] == Decimal("1.5")


def test_schema_loads_wire_dicts() -> None:
    t = Trade.schema().load(TRADE)
    assert t == Trade.from_dict(TRADE)


def test_timestamps_are_aware_utc_for_every_iso_form() -> None:
    for text in (
        "2024-07-24T19:12:35.705Z",
        "2024-07-24T19:12:35.705000+00:00",
        "2024-07-24T21:12:35.705+02:00",
        "2024-07-24T19:12:35.7Z",
    ):
        dt = parse_timestamp(text)
        assert dt.tzinfo is timezone.utc
        assert dt.replace(microsecond=0) == datetime(2024, 7, 24, 19, 12, 35, tzinfo=timezone.utc)


def test_orderbook_batch_is_merged_in_wire_order() -> None:
    msg = decode_message(
        _frame(
            "v4_orderbook",
            "channel_batch_data",
            [
                {"bids": [["2396.1", "3.123"]]},
                {"asks": [["2397.1", "23.768"]]},
                {"bids": [["2396.1", "0"]]},
                {"bids": [["2390", "1"]], "asks": [["2399", "2"]]},
            ],
            id="ETH-USD",
        )
    )
    assert isinstance(msg, OrderbookMessage) and not msg.is_snapshot
    assert [(lv.price, lv.size) for lv in msg.bids] == [
        (Decimal("2396.1"), Decimal("3.123")),
        (Decimal("2396.1"), 0),
        (Decimal("2390"), 1),
    ]
    assert [lv.price for lv in msg.asks] == [Decimal("2397.1"), Decimal("2399")]


def test_subaccount_batch_merges_every_kind_and_keeps_last_height() -> None:
    order = {"id": "o1", "subaccountId": "s", "clientId": "1", "status": "OPEN", "orderFlags": "0"}
    reward = {
        "tradingReward": "0.1",
        "createdAt": "2024-08-12T14:06:01.172Z",
        "createdAtHeight": "5",
    }
    transfer = {
        "sender": {"address": "a"},
        "recipient": {"address": "b", "subaccountNumber": 0},
        "size": "10",
        "symbol": "USDC",
        "type": "DEPOSIT",
        "createdAt": "2024-08-16T08:43:22.999Z",
        "createdAtHeight": "6",
    }
    msg = decode_message(
        _frame(
            "v4_parent_subaccounts",
            "channel_batch_data",
            [
                {"orders": [order], "blockHeight": "5"},
                {"tradingReward": reward, "transfers": transfer, "blockHeight": "6"},
                {"orders": [{**order, "status": "FILLED"}]},
            ],
            id="dydx1abc/0",
            subaccountNumber=128,
        )
    )
    assert isinstance(msg, ParentSubaccountMessage) and isinstance(msg, SubaccountMessage)
    assert [o.status for o in msg.orders] == ["OPEN", "FILLED"]
    assert len(msg.trading_rewards) == 1 and len(msg.transfers) == 1
    assert msg.block_height == 6 and msg.subaccount_number == 128 and msg.subaccount is None


def test_markets_updates_take_the_ticker_from_the_key() -> None:
    msg = decode_message(
        _frame(
            "v4_markets",
            "channel_batch_data",
            [
                {"trading": {"CRO-USD": {"baseOpenInterest": "5100", "id": "67"}}},
                {"oraclePrices": {"BTC-USD": {"oraclePrice": "65000", "effectiveAtHeight": "9"}}},
            ],
        )
    )
    assert isinstance(msg, MarketsMessage) and msg.id is None and msg.markets == {}
    assert msg.trading[0].ticker == "CRO-USD" and msg.trading[0].status is None
    assert msg.oracle_prices[0].ticker == "BTC-USD"
    assert msg.oracle_prices[0].oracle_price == Decimal("65000")


def test_block_height_snapshot_and_update_share_one_field() -> None:
    snap = decode_message(
        _frame(
            "v4_block_height",
            "subscribed",
            {"height": "26543048", "time": "2024-12-02T18:45:31.771Z"},
            id="v4_block_height",
        )
    )
    upd = decode_message(
        _frame(
            "v4_block_height",
            "channel_batch_data",
            [
                {"blockHeight": "26543049", "time": "2024-12-02T18:45:33.548Z"},
                {"blockHeight": "26543050", "time": "2024-12-02T18:45:34.548Z"},
            ],
            id="v4_block_height",
        )
    )
    assert isinstance(snap, BlockHeightMessage) and snap.is_snapshot and snap.height == 26543048
    assert isinstance(upd, BlockHeightMessage) and upd.height == 26543050
    assert [b.height for b in upd.blocks] == [26543049, 26543050]


def test_candle_resolution_is_filled_from_the_subscription_id() -> None:
    candle = {
        "startedAt": "2023-08-01T00:00:00.000Z",
        "ticker": "ETH-USD",
        "low": "1",
        "high": "2",
        "open": "1",
        "close": "2",
        "baseTokenVolume": "3",
        "usdVolume": "4",
        "trades": 5,
        "startingOpenInterest": "6",
    }
    msg = decode_message(_frame("v4_candles", "channel_data", candle, id="ETH-USD/1HOUR"))
    assert msg.candles[0].resolution is CandleResolution.ONE_HOUR  # type: ignore[attr-defined]
    assert Candle.from_dict(candle).resolution is None


def test_trades_message_keeps_wire_order_across_batch_elements() -> None:
    msg = decode_message(
        _frame(
            "v4_trades",
            "channel_batch_data",
            [
                {"trades": [{**TRADE, "id": "a"}, {**TRADE, "id": "b"}]},
                {"trades": [{**TRADE, "id": "c"}]},
            ],
            id="ETH-USD",
        )
    )
    assert isinstance(msg, TradesMessage)
    assert [t.id for t in msg.trades] == ["a", "b", "c"]
