"""Local state stays true: drift repair against REST, trade back-fill, and a soak with crossed
levels, silent deletions and forced reconnects after which books, markets and accounts equal the
emulator's REST truth (anchors.md §3 items 6, 21-24)."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any, Dict, List

import pytest

from dydx_ws import DydxWebSocketClient, ResyncEvent, SubscriptionState, TradesMessage
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.models import OrderbookResponse, PerpetualMarket
from tests.helpers.sdk_client import FAST_EMULATOR, FAST_RECONNECT, Recorder
from tests.helpers.waiting import wait_until


def book_matches_rest(client: DydxWebSocketClient, emu: IndexerEmulator, ticker: str) -> bool:
    rest = OrderbookResponse.from_dict(emu.rest_orderbook(ticker))
    book = client.order_book(ticker)
    return not book.stale and book.equals_levels(rest.bids, rest.asks, depth=100)


def markets_match_rest(client: DydxWebSocketClient, emu: IndexerEmulator) -> bool:
    status, body = emu.rest_get("/v4/perpetualMarkets")
    assert status == 200
    rest = {t: PerpetualMarket.from_dict(m) for t, m in body["markets"].items()}
    local = client.markets
    if set(local) != set(rest):
        return False
    return all(
        getattr(local[t], f) == v
        for t, m in rest.items()
        for f, v in vars(m).items()
        if v is not None
    )


def account_matches_rest(client: DydxWebSocketClient, emu: IndexerEmulator, number: int) -> bool:
    address = emu.demo_address
    status, body = emu.rest_get(f"/v4/addresses/{address}/subaccountNumber/{number}")
    assert status == 200
    rest = body["subaccount"]
    _, orders = emu.rest_get(
        f"/v4/orders?address={address}&subaccountNumber={number}"
        "&status=OPEN,UNTRIGGERED,BEST_EFFORT_OPENED"
    )
    view = client.subaccount(address, number)
    positions = {m: Decimal(p["size"]) for m, p in rest["openPerpetualPositions"].items()}
    return (
        view.equity == Decimal(rest["equity"])
        and view.free_collateral == Decimal(rest["freeCollateral"])
        and {m: p.size for m, p in view.positions.items()} == positions
        and set(view.open_orders) == {o["id"] for o in orders}
    )


def test_a_silent_server_deletion_is_repaired_by_the_drift_check() -> None:
    resyncs: List[ResyncEvent] = []
    with IndexerEmulator(markets=["BTC-USD"], seed=21, **FAST_EMULATOR) as emu:
        client = DydxWebSocketClient(
            network=emu.network, reconnect=FAST_RECONNECT, check_interval=0.3, confirm_delay=0.2
        )
        with client:
            client.on("resync", resyncs.append)
            client.subscribe_orderbook("BTC-USD").wait_subscribed(10)
            emu.pause()
            emu.flush()
            wait_until(lambda: book_matches_rest(client, emu, "BTC-USD"), 10)
            deleted = emu.silent_delete_level("BTC-USD")  # REST changes; no message is sent
            assert deleted is not None
            assert not book_matches_rest(client, emu, "BTC-USD")
            wait_until(lambda: book_matches_rest(client, emu, "BTC-USD"), 10)
            wait_until(lambda: resyncs, 5)
            assert resyncs[0].channel == "v4_orderbook" and resyncs[0].id == "BTC-USD"
            assert client.stats()["resyncs"] >= 1


def test_trades_missed_during_a_gap_are_backfilled_in_order() -> None:
    rec = Recorder()
    with IndexerEmulator(markets=["BTC-USD"], seed=5, **FAST_EMULATOR) as emu:
        client = DydxWebSocketClient(network=emu.network, reconnect=FAST_RECONNECT)
        with client:
            key = client.subscribe_trades("BTC-USD", rec, backfill=True).key
            rec.wait(lambda: rec.count(key, snapshots=False) >= 5, 20)
            emu.reject_handshakes(1.0)  # a one-second outage: blocks keep producing trades
            emu.drop_connections(code=1011)
            rec.wait(lambda: rec.count(key, snapshots=True) >= 2, 20)
            rec.wait(lambda: any(m.backfilled for m in rec.messages[key]), 10)
            emu.pause()
            emu.flush()
            msgs: List[Any] = list(rec.messages[key])
        live = [m for m in msgs if not m.is_snapshot]
        ids = [t.id for m in live for t in m.trades]
        assert ids == sorted(ids) and len(ids) == len(set(ids))  # in order, no duplicate
        backfill = [m for m in live if m.backfilled]
        assert len(backfill) == 1 and isinstance(backfill[0], TradesMessage)
        # every trade the server made between the first live trade and the last is there
        first, last = ids[0], ids[-1]
        _, body = emu.rest_get("/v4/trades/perpetualMarket/BTC-USD?limit=1000")
        server = sorted(t["id"] for t in body["trades"] if first <= t["id"] <= last)
        assert ids == server


def _soak(seconds: float, reconnects: int) -> None:
    rng = random.Random(99)
    with IndexerEmulator(
        markets=["BTC-USD", "ETH-USD"],
        seed=13,
        crossed_levels=True,
        silent_deletions=True,
        stale_level_seconds=2.0,
        trading_interval=1.0,
        **FAST_EMULATOR,
    ) as emu:
        client = DydxWebSocketClient(
            network=emu.network,
            reconnect=FAST_RECONNECT,
            check_interval=2.0,
            confirm_delay=0.3,
        )
        resyncs: List[ResyncEvent] = []
        with client:
            client.on("resync", resyncs.append)
            subs = [
                client.subscribe_orderbook("BTC-USD"),
                client.subscribe_orderbook("ETH-USD", batched=True),
                client.subscribe_markets(),
                client.subscribe_subaccount(emu.demo_address, 0),
                client.subscribe_subaccount(emu.demo_address, 128),
                client.subscribe_parent_subaccount(emu.demo_address, 0),
            ]
            t0 = time.monotonic()
            for i in range(reconnects):
                due = t0 + (i + 1) * seconds / (reconnects + 1)
                while time.monotonic() < due:  # a books-must-not-cross check while it runs
                    for ticker in ("BTC-USD", "ETH-USD"):
                        assert not client.order_book(ticker).is_crossed
                    time.sleep(0.05)  # pacing the observation loop only
                before = client.stats()["reconnects"]
                emu.drop_connections(code=rng.choice([1000, 1011, 1012, None]))
                wait_until(lambda b=before: client.stats()["reconnects"] > b, 20)
            while time.monotonic() < t0 + seconds:
                time.sleep(0.1)  # the rest of the soak period (no synchronisation)
            wait_until(lambda: all(s.state is SubscriptionState.ACTIVE for s in subs), 20)
            emu.pause()
            emu.flush()
            # within one check interval (plus confirmation and REST time) everything agrees
            deadline = 2.0 * 2 + 0.3 + 5
            for ticker in ("BTC-USD", "ETH-USD"):
                wait_until(lambda t=ticker: book_matches_rest(client, emu, t), deadline)
            wait_until(lambda: markets_match_rest(client, emu), deadline)
            for number in (0, 128):
                wait_until(lambda n=number: account_matches_rest(client, emu, n), deadline)
            stats = client.stats()
            assert stats["reconnects"] >= reconnects
            assert stats["decode_errors"] == 0 and stats["dropped"] == 0
            crossed: Dict[str, int] = {
                t: client.order_book(t).crossed for t in ("BTC-USD", "ETH-USD")
            }
        assert sum(crossed.values()) > 0  # crossed levels really arrived and were resolved
        assert any(e.channel == "v4_orderbook" for e in resyncs)  # silent deletions repaired


@pytest.mark.timeout(400)
def test_soak_two_minutes_crossed_levels_silent_deletions_and_reconnects() -> None:
    _soak(seconds=120.0, reconnects=20)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_soak_ten_minutes() -> None:
    _soak(seconds=600.0, reconnects=100)
