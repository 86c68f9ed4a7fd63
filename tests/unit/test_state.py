"""Behaviour of dydx_ws.state: markets merge, subaccount and parent-subaccount live views.

Frames are shaped like the protocol.md §3.1/§3.5/§3.6 captures and go through decode_message,
so the state is tested on exactly what a callback would receive.
"""

from __future__ import annotations

import json
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from dydx_ws import MarketsMessage, SubaccountMessage, decode_message
from dydx_ws.models import MarketStatus, PerpetualMarket
from dydx_ws.state import (
    CallableMarketData,
    MarketDataSource,
    MarketsState,
    ParentSubaccountState,
    SubaccountState,
)

FRAMES = Path(__file__).resolve().parent.parent / "fixtures" / "frames"
D = Decimal
ADDR = "dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art"
_ids = iter(range(100, 10**9))


def load(name: str) -> Any:
    return decode_message((FRAMES / name).read_text())


def markets_frame(contents: Any, kind: str = "channel_data") -> MarketsMessage:
    frame = {
        "type": kind,
        "connection_id": "c",
        "message_id": next(_ids),
        "channel": "v4_markets",
        "contents": contents,
    }
    if kind != "subscribed":
        frame["version"] = "1.0.0"
    msg = decode_message(json.dumps(frame))
    assert isinstance(msg, MarketsMessage)
    return msg


def market_json(ticker: str, **extra: Any) -> Dict[str, Any]:
    base = {
        "ticker": ticker,
        "clobPairId": "0",
        "status": "ACTIVE",
        "oraclePrice": "100",
        "initialMarginFraction": "0.05",
        "maintenanceMarginFraction": "0.03",
        "tickSize": "1",
        "stepSize": "0.001",
        "volume24H": "10",
        "trades24H": 5,
    }
    base.update(extra)
    return base


def account_frame(
    contents: Dict[str, Any],
    *,
    snapshot: bool = False,
    number: int = 0,
    parent: bool = False,
    child: Optional[int] = None,
) -> SubaccountMessage:
    channel = "v4_parent_subaccounts" if parent else "v4_subaccounts"
    frame: Dict[str, Any] = {
        "type": "subscribed" if snapshot else "channel_data",
        "connection_id": "c",
        "message_id": next(_ids),
        "channel": channel,
        "id": f"{ADDR}/{number}",
        "contents": contents,
    }
    if not snapshot:
        frame["version"] = "3.0.0"
    if child is not None:
        frame["subaccountNumber"] = child
    msg = decode_message(json.dumps(frame))
    assert isinstance(msg, SubaccountMessage)
    return msg


def subaccount_json(
    number: int = 0,
    equity: str = "1000",
    free: str = "900",
    usdc: Optional[str] = "1000",
    usdc_side: str = "LONG",
    positions: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    assets = (
        {}
        if usdc is None
        else {
            "USDC": {
                "size": usdc,
                "symbol": "USDC",
                "side": usdc_side,
                "assetId": "0",
                "subaccountNumber": number,
            }
        }
    )
    return {
        "address": ADDR,
        "subaccountNumber": number,
        "equity": equity,
        "freeCollateral": free,
        "openPerpetualPositions": positions or {},
        "assetPositions": assets,
        "marginEnabled": True,
        "updatedAtHeight": "100",
        "latestProcessedBlockHeight": "101",
    }


def position_json(
    market: str, size: str, side: str = "LONG", status: str = "OPEN", **extra: Any
) -> Dict[str, Any]:
    base = {
        "market": market,
        "status": status,
        "side": side,
        "size": size,
        "maxSize": size,
        "entryPrice": "100",
        "realizedPnl": "0",
        "unrealizedPnl": "1",
        "sumOpen": size,
        "sumClose": "0",
        "netFunding": "0",
        "subaccountNumber": 0,
    }
    base.update(extra)
    return base


def order_json(oid: str, status: str = "OPEN", **extra: Any) -> Dict[str, Any]:
    base = {
        "id": oid,
        "subaccountId": "s",
        "clientId": "1",
        "clobPairId": "0",
        "side": "BUY",
        "size": "2",
        "totalFilled": "0",
        "price": "100",
        "type": "LIMIT",
        "status": status,
        "timeInForce": "GTT",
        "reduceOnly": False,
        "orderFlags": "64",
        "postOnly": False,
        "ticker": "BTC-USD",
        "clientMetadata": "0",
        "subaccountNumber": 0,
    }
    base.update(extra)
    return base


def fill_json(fid: str, size: str = "1") -> Dict[str, Any]:
    return {
        "id": fid,
        "subaccountId": "s",
        "side": "BUY",
        "liquidity": "TAKER",
        "type": "LIMIT",
        "clobPairId": "0",
        "size": size,
        "price": "100",
        "quoteAmount": "100",
        "eventId": "011ec83d000000020000000b",
        "transactionHash": "AB",
        "createdAt": "2024-08-12T14:06:01.172Z",
        "createdAtHeight": "200",
        "fee": "0.01",
        "ticker": "BTC-USD",
    }


# ============================================================================ markets


def test_markets_snapshot_replaces_map() -> None:
    state = MarketsState()
    assert not state.has_snapshot and len(state) == 0
    state.apply(markets_frame({"markets": {"OLD-USD": market_json("OLD-USD")}}, "subscribed"))
    state.apply(load("v4_markets__subscribed__ntl-98-markets.json"))
    assert state.has_snapshot and len(state) == 98
    assert "OLD-USD" not in state
    assert state["AAVE-USD"].oracle_price == D("110.98719743")


def test_markets_trading_diff_merges_field_by_field() -> None:
    state = MarketsState()
    cro = market_json("CRO-USD", baseOpenInterest="1")
    state.apply(markets_frame({"markets": {"CRO-USD": cro}}, "subscribed"))
    before = state["CRO-USD"]
    state.apply(load("v4_markets__channel_data__ntl-trading-partial-cro.json"))  # only baseOI
    after = state["CRO-USD"]
    assert after.base_open_interest == D("5100")
    assert after.oracle_price == D("100") and after.volume_24h == D("10")
    assert after.status == MarketStatus.ACTIVE and after.trades_24h == 5
    assert before.base_open_interest == D("1")  # the published object was not mutated
    assert after is not before


def test_markets_batch_diff_creates_new_market_and_keeps_others() -> None:
    state = MarketsState()
    state.apply(
        markets_frame(
            {"markets": {t: market_json(t) for t in ("BTC-USD", "ETH-USD")}}, "subscribed"
        )
    )
    state.apply(load("v4_markets__channel_batch_data__abacus-trading-partial-and-new-market.json"))
    assert state["BTC-USD"].trades_24h == 1205976
    assert state["BTC-USD"].open_interest == D("5082.297882905")
    assert state["BTC-USD"].tick_size == D("1")  # untouched field kept
    mln = state["MLN-USD"]
    assert mln.initial_margin_fraction == D("0.05") and mln.market_id == 111
    assert mln.oracle_price is None


def test_markets_oracle_prices() -> None:
    state = MarketsState()
    state.apply(markets_frame({"markets": {"JASMY-USD": market_json("JASMY-USD")}}, "subscribed"))
    view = state.snapshot()
    state.apply(load("v4_markets__channel_data__ntl-oracle-jasmy.json"))
    assert state.oracle_price("JASMY-USD") == D("0.02069413882")
    assert state["JASMY-USD"].tick_size == D("1")
    assert view["JASMY-USD"].oracle_price == D("100")  # an earlier snapshot() is untouched
    state.apply(
        markets_frame(
            {
                "oraclePrices": {
                    "NEW-USD": {
                        "oraclePrice": "5",
                        "effectiveAt": "2024-08-17T17:24:36.330Z",
                        "effectiveAtHeight": "19182358",
                        "marketId": 999,
                    }
                }
            }
        )
    )
    assert state.oracle_price("NEW-USD") == D("5")
    assert state.oracle_price("NOPE-USD") is None
    assert state.initial_margin_fraction("JASMY-USD") == D("0.05")
    assert state.initial_margin_fraction("NEW-USD") is None


def test_markets_copy_on_write_and_replace_all() -> None:
    state = MarketsState()
    state.apply(
        markets_frame({"markets": {t: market_json(t) for t in ("A-USD", "B-USD")}}, "subscribed")
    )
    snap = state.snapshot()
    b_before = state["B-USD"]
    state.apply(markets_frame({"trading": {"A-USD": {"volume24H": "99"}}}))
    assert state["B-USD"] is b_before  # unchanged markets are shared, not copied
    assert snap["A-USD"].volume_24h == D("10")
    snap.clear()  # mutating a returned dict does not touch the state
    assert len(state) == 2 and sorted(state) == ["A-USD", "B-USD"]
    state.replace_all({"C-USD": PerpetualMarket(ticker="C-USD", oracle_price=D("3"))})
    assert list(state) == ["C-USD"] and state.get("A-USD") is None
    assert isinstance(state, MarketDataSource)
    assert state.updated_at is not None and "1 markets" in repr(state)


# ============================================================================ subaccount


def test_subaccount_snapshot_from_capture() -> None:
    msg = load("v4_subaccounts__subscribed__ntl-short-eth-long-btc.json")
    state = SubaccountState(ADDR, 0)
    assert state.equity is None and state.free_collateral is None and not state.has_snapshot
    state.apply(msg)
    assert state.has_snapshot
    assert state.equity == msg.subaccount.equity
    assert state.free_collateral == msg.subaccount.free_collateral
    assert set(state.positions) == set(msg.subaccount.open_perpetual_positions)
    assert state.asset_positions["USDC"].size == D("5742.811799")
    assert state.block_height == msg.block_height


def test_snapshot_orders_exclude_canceled() -> None:
    state = SubaccountState(ADDR, 0)
    state.apply(load("v4_subaccounts__subscribed__ntl-edited-best-effort-opened-and-canceled.json"))
    # The capture lists the same order as BEST_EFFORT_OPENED then BEST_EFFORT_CANCELED.
    assert state.open_orders == {}


def test_unknown_subaccount_snapshot_is_empty_not_none() -> None:
    state = SubaccountState(ADDR, 5)
    state.apply(load("v4_subaccounts__subscribed__derived-unknown-subaccount-empty.json"))
    assert state.has_snapshot and state.subaccount is None
    assert state.equity == 0 and state.free_collateral == 0
    assert state.positions == {} and state.open_orders == {}


def test_order_lifecycle_partial_updates_keep_fields() -> None:
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame(
            {"subaccount": subaccount_json(), "orders": [], "blockHeight": "100"}, snapshot=True
        )
    )
    state.apply(account_frame({"orders": [order_json("o1")], "blockHeight": "101"}))
    assert state.open_orders["o1"].price == D("100")
    # Partial fill: the update carries only the guaranteed fields plus totalFilled.
    state.apply(
        account_frame(
            {
                "orders": [
                    {
                        "id": "o1",
                        "subaccountId": "s",
                        "clientId": "1",
                        "status": "OPEN",
                        "orderFlags": "64",
                        "totalFilled": "0.5",
                    }
                ],
                "blockHeight": "102",
            }
        )
    )
    o1 = state.open_orders["o1"]
    assert o1.total_filled == D("0.5")
    assert (o1.price, o1.size, o1.side, o1.ticker) == (D("100"), D("2"), "BUY", "BTC-USD")
    state.apply(
        account_frame(
            {
                "orders": [
                    {
                        "id": "o1",
                        "subaccountId": "s",
                        "clientId": "1",
                        "status": "FILLED",
                        "orderFlags": "64",
                        "totalFilled": "2",
                    }
                ]
            }
        )
    )
    assert "o1" not in state.open_orders
    assert state.block_height == 102


@pytest.mark.parametrize(
    "status,kept",
    [
        ("OPEN", True),
        ("UNTRIGGERED", True),
        ("BEST_EFFORT_OPENED", True),
        ("FILLED", False),
        ("CANCELED", False),
        ("BEST_EFFORT_CANCELED", False),
        ("ERROR", False),
        ("SOME_NEW_STATUS", True),
    ],
)
def test_order_statuses(status: str, kept: bool) -> None:
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame(
            {"subaccount": subaccount_json(), "orders": [order_json("o1")]}, snapshot=True
        )
    )
    state.apply(
        account_frame(
            {
                "orders": [
                    {
                        "id": "o1",
                        "subaccountId": "s",
                        "clientId": "1",
                        "status": status,
                        "orderFlags": "64",
                    }
                ]
            }
        )
    )
    assert ("o1" in state.open_orders) is kept
    if kept:
        assert state.open_orders["o1"].status == status
        assert state.open_orders["o1"].price == D("100")


def test_canceled_order_capture_removes_known_order() -> None:
    msg = load("v4_subaccounts__channel_data__ntl-order-best-effort-canceled.json")
    oid = msg.orders[0].id
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame({"subaccount": subaccount_json(), "orders": [order_json(oid)]}, snapshot=True)
    )
    assert oid in state.open_orders
    state.apply(msg)
    assert oid not in state.open_orders


def test_positions_merge_and_close() -> None:
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame(
            {
                "subaccount": subaccount_json(
                    positions={
                        "BTC-USD": position_json("BTC-USD", "1"),
                        "ETH-USD": position_json("ETH-USD", "-2", side="SHORT"),
                    }
                )
            },
            snapshot=True,
        )
    )
    # An update without realizedPnl/unrealizedPnl keeps the known values.
    upd = position_json("BTC-USD", "1.5", positionId="p1", address=ADDR)
    del upd["realizedPnl"], upd["unrealizedPnl"]
    state.apply(account_frame({"perpetualPositions": [upd]}))
    btc = state.positions["BTC-USD"]
    assert btc.size == D("1.5") and btc.unrealized_pnl == D("1") and btc.position_id == "p1"
    state.apply(
        account_frame(
            {
                "perpetualPositions": [
                    position_json("BTC-USD", "0", status="CLOSED"),
                    position_json("ETH-USD", "-2", side="SHORT", status="LIQUIDATED"),
                ]
            }
        )
    )
    assert state.positions == {}
    state.apply(account_frame({"perpetualPositions": [position_json("SOL-USD", "3")]}))
    assert list(state.positions) == ["SOL-USD"]


def test_asset_positions_and_history_are_bounded() -> None:
    state = SubaccountState(ADDR, 0, history=3)
    state.apply(account_frame({"subaccount": subaccount_json()}, snapshot=True))
    state.apply(
        account_frame(
            {
                "assetPositions": [
                    {
                        "address": ADDR,
                        "subaccountNumber": 0,
                        "positionId": "a",
                        "assetId": "0",
                        "symbol": "USDC",
                        "side": "LONG",
                        "size": "750",
                    }
                ]
            }
        )
    )
    assert state.asset_positions["USDC"].size == D("750")
    assert state.asset_positions["USDC"].position_id == "a"
    for i in range(5):
        state.apply(account_frame({"fills": [fill_json(f"f{i}")], "blockHeight": str(200 + i)}))
    assert [f.id for f in state.fills] == ["f2", "f3", "f4"]
    state.apply(load("v4_subaccounts__channel_data__ntl-transfer-withdrawal.json"))
    state.apply(load("v4_subaccounts__channel_data__ntl-trading-reward.json"))
    assert state.transfers[0].size == D("10")
    assert state.trading_rewards[0].trading_reward == D("0.000406735266535702")
    # A new snapshot replaces orders/positions but keeps the history it does not repeat.
    state.apply(
        account_frame(
            {"subaccount": subaccount_json(usdc="5"), "orders": [order_json("o9")]}, snapshot=True
        )
    )
    assert len(state.fills) == 3 and list(state.open_orders) == ["o9"]
    assert state.asset_positions["USDC"].size == D("5")


def test_replace_from_rest() -> None:
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame(
            {"subaccount": subaccount_json(), "orders": [order_json("o1")]}, snapshot=True
        )
    )
    rest = load("v4_subaccounts__subscribed__ntl-short-eth-long-btc.json").subaccount
    fresh_order = load("v4_subaccounts__channel_data__ntl-order-open-long-term.json").orders[0]
    state.replace_from_rest(rest, [fresh_order], block_height=5)
    assert list(state.open_orders) == [fresh_order.id]
    assert state.equity == rest.equity and state.subaccount is rest


# ============================================================================ equity


def _book_account(usdc: str = "1000", usdc_side: str = "LONG") -> SubaccountState:
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame(
            {
                "subaccount": subaccount_json(
                    equity="123",
                    free="45",
                    usdc=usdc,
                    usdc_side=usdc_side,
                    positions={
                        "BTC-USD": position_json("BTC-USD", "0.5"),
                        "ETH-USD": position_json("ETH-USD", "-2", side="SHORT"),
                    },
                )
            },
            snapshot=True,
        )
    )
    return state


PRICES = {"BTC-USD": D("60000"), "ETH-USD": D("3000")}
IMF = {"BTC-USD": D("0.05"), "ETH-USD": D("0.1")}


def test_equity_formula_with_markets_state() -> None:
    markets = MarketsState()
    markets.apply(
        markets_frame(
            {
                "markets": {
                    t: market_json(t, oraclePrice=str(PRICES[t]), initialMarginFraction=str(IMF[t]))
                    for t in PRICES
                }
            },
            "subscribed",
        )
    )
    state = _book_account()
    assert (state.equity, state.free_collateral) == (D("123"), D("45"))  # snapshot values
    state.set_price_source(markets)
    # equity = 1000 + 0.5*60000 - 2*3000 = 25000; IM = 30000*0.05 + 6000*0.1 = 2100.
    assert state.equity == D("25000")
    assert state.free_collateral == D("22900")
    markets.apply(
        markets_frame({"oraclePrices": {"ETH-USD": {"oraclePrice": "3500", "marketId": 1}}})
    )
    # Live: 1000 + 30000 - 7000 = 24000; IM = 1500 + 700 = 2200.
    assert state.equity == D("24000") and state.free_collateral == D("21800")
    view = state.view()
    assert (view.equity, view.free_collateral) == (D("24000"), D("21800"))
    state.set_price_source(None)
    assert state.equity == D("123")


def test_equity_formula_short_usdc_and_callables() -> None:
    state = _book_account(usdc="500", usdc_side="SHORT")
    state.set_price_source(PRICES.get, IMF.get)
    # -500 + 30000 - 6000 = 23500; free = 23500 - 2100.
    assert state.equity == D("23500") and state.free_collateral == D("21400")
    state.set_price_source(CallableMarketData(PRICES.get))  # no IMF: free falls back
    assert state.equity == D("23500") and state.free_collateral == D("45")
    state.set_price_source({"BTC-USD": D("1")}.get, IMF.get)  # a price missing: snapshot values
    assert (state.equity, state.free_collateral) == (D("123"), D("45"))


# ============================================================================ parent


def test_parent_children_kept_apart() -> None:
    msg = load("v4_parent_subaccounts__subscribed__abacus-real-child-128.json")
    parent = ParentSubaccountState(msg.subaccount.address, 0)
    assert parent.equity is None
    parent.apply(msg)
    kids = parent.children
    assert sorted(kids) == [0, 128]
    assert kids[0].equity == D("1711.959192") and kids[128].equity == D("285.689378002")
    assert parent.equity == msg.subaccount.equity  # the sum equals the parent's value
    assert parent.free_collateral == sum(k.free_collateral or 0 for k in kids.values())
    assert kids[0].open_orders == {}
    assert list(kids[128].open_orders) == [o.id for o in msg.orders]  # routed by child number
    assert kids[0].positions == {} and list(kids[128].positions) == ["LDO-USD"]

    fill = load("v4_parent_subaccounts__channel_data__derived-child-128-fill.json")
    parent.apply(fill)
    assert len(kids[128].fills) == 1 and kids[0].fills == []
    assert parent.child(128) is kids[128]
    # An update for a child the snapshot did not list creates it, empty.
    parent.apply(
        account_frame({"fills": [fill_json("x")], "blockHeight": "999"}, parent=True, child=256)
    )
    assert sorted(parent.children) == [0, 128, 256]
    assert parent.children[256].equity == 0 and len(parent.children[256].fills) == 1
    assert parent.block_height == 999
    # A new snapshot replaces; child objects users hold stay live.
    parent.apply(msg)
    assert sorted(parent.children) == [0, 128] and parent.children[128] is kids[128]


def test_parent_without_children_uses_snapshot_values_and_live_equity() -> None:
    parent = ParentSubaccountState(ADDR, 0)
    parent.apply(
        account_frame(
            {
                "subaccount": {
                    "address": ADDR,
                    "parentSubaccountNumber": 0,
                    "equity": "77",
                    "freeCollateral": "70",
                    "childSubaccounts": [],
                }
            },
            snapshot=True,
            parent=True,
        )
    )
    assert (parent.equity, parent.free_collateral) == (D("77"), D("70"))
    parent.apply(
        account_frame(
            {
                "subaccount": {
                    "address": ADDR,
                    "parentSubaccountNumber": 0,
                    "equity": "0",
                    "freeCollateral": "0",
                    "childSubaccounts": [
                        subaccount_json(0, usdc="100"),
                        subaccount_json(
                            128, usdc="10", positions={"BTC-USD": position_json("BTC-USD", "0.001")}
                        ),
                    ],
                },
                "orders": [order_json("o1", subaccountNumber=128)],
            },
            snapshot=True,
            parent=True,
        )
    )
    parent.set_price_source(PRICES.get, IMF.get)
    # child 0: 100; child 128: 10 + 60 = 70, IM 3 -> free 67.
    assert parent.equity == D("170") and parent.free_collateral == D("167")
    assert list(parent.open_orders) == ["o1"] and parent.children[0].open_orders == {}
    parent.apply(
        account_frame({"orders": [order_json("o1", status="CANCELED")]}, parent=True, child=128)
    )
    assert parent.open_orders == {}


# ============================================================================ threads


def test_readers_see_consistent_subaccount_views() -> None:
    """Update k opens order ok, fills order o(k-1) and sets the BTC position to size k: a view
    must always show exactly one open order whose number is the position size."""
    state = SubaccountState(ADDR, 0)
    state.apply(
        account_frame(
            {
                "subaccount": subaccount_json(positions={"BTC-USD": position_json("BTC-USD", "1")}),
                "orders": [order_json("o1")],
            },
            snapshot=True,
        )
    )
    updates = [
        account_frame(
            {
                "orders": [order_json(f"o{k}"), order_json(f"o{k - 1}", status="FILLED")],
                "perpetualPositions": [position_json("BTC-USD", str(k))],
                "fills": [fill_json(f"f{k}")],
                "blockHeight": str(k),
            }
        )
        for k in range(2, 1502)
    ]
    done = threading.Event()
    errors: List[str] = []
    reads = [0]
    started = threading.Barrier(2)

    def reader() -> None:
        started.wait()
        try:
            while not done.is_set() or reads[0] == 0:
                v = state.view()
                reads[0] += 1
                size = v.positions["BTC-USD"].size
                if list(v.open_orders) != [f"o{size}"]:
                    errors.append(f"orders {list(v.open_orders)} with size {size}")
                if v.block_height is not None and v.block_height != int(size):
                    errors.append(f"height {v.block_height} with size {size}")
                if errors:
                    return
        except Exception as exc:
            errors.append(repr(exc))

    t = threading.Thread(target=reader)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        t.start()
        started.wait()
        for u in updates:
            state.apply(u)
    finally:
        done.set()
        sys.setswitchinterval(old)
    t.join(timeout=30)
    assert not t.is_alive()
    assert errors == [] and reads[0] > 0
    assert list(state.open_orders) == ["o1501"] and len(state.fills) == 1000
