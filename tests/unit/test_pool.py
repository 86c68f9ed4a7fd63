"""Placement of subscriptions over the connection pool (engine/_pool.py), on clients that are
never started: no socket is opened, so this is pure logic."""

from __future__ import annotations

from typing import Dict, List

import pytest

from dydx_ws import DydxWebSocketClient, SubscriptionError
from dydx_ws.protocol._channels import channel


def make(**kwargs: object) -> DydxWebSocketClient:
    return DydxWebSocketClient(url="ws://127.0.0.1:9/v4/ws", check_interval=None, **kwargs)  # type: ignore[arg-type]


def placed(client: DydxWebSocketClient) -> List[Dict[str, int]]:
    return [c["subscriptions"] for c in client.stats()["connections"]]


@pytest.mark.parametrize("name", ["v4_orderbook", "v4_candles"])
def test_the_table_limit_opens_another_connection(name: str) -> None:
    client = make()
    limit = channel(name).limit
    assert limit == 32
    subscribe = client.subscribe_orderbook if name == "v4_orderbook" else client.subscribe_trades
    if name == "v4_candles":
        subscribe = lambda t: client.subscribe_candles(t, "1MIN")  # noqa: E731
    for i in range(limit + 1):
        subscribe(f"T{i}-USD")
    assert placed(client) == [{name: limit}, {name: 1}]
    assert [c["state"] for c in client.stats()["connections"]] == ["not started"] * 2


def test_channels_share_a_connection_up_to_their_own_limits() -> None:
    client = make(subscription_limits={"v4_trades": 2})
    for t in ("A-USD", "B-USD", "C-USD"):
        client.subscribe_trades(t)
        client.subscribe_orderbook(t)
    client.subscribe_block_height()
    assert placed(client) == [
        {"v4_trades": 2, "v4_orderbook": 3, "v4_block_height": 1},
        {"v4_trades": 1},
    ]


def test_the_cap_raises_and_says_so() -> None:
    client = make(subscription_limits={"v4_trades": 2}, max_connections=2)
    for t in ("A-USD", "B-USD", "C-USD", "D-USD"):
        client.subscribe_trades(t)
    with pytest.raises(SubscriptionError, match="max_connections=2") as info:
        client.subscribe_trades("E-USD")
    assert info.value.channel == "v4_trades" and info.value.id == "E-USD"
    assert len(client.subscriptions()) == 4  # nothing half-registered
    # a second handle of a placed topic needs no room
    client.subscribe_trades("A-USD")
    assert placed(client) == [{"v4_trades": 2}, {"v4_trades": 2}]


def test_an_unsubscribe_frees_room_on_its_connection() -> None:
    client = make(subscription_limits={"v4_trades": 1})
    a = client.subscribe_trades("A-USD")
    client.subscribe_trades("B-USD")
    a.unsubscribe()
    client.subscribe_trades("C-USD")
    assert placed(client) == [{"v4_trades": 1}, {"v4_trades": 1}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_connections": 0},
        {"max_connections": True},
        {"max_connections": 1.5},
        {"subscription_limits": {"v4_nope": 3}},
        {"subscription_limits": {"v4_trades": 0}},
        {"connection_grace": -1},
        {"connection_grace": float("nan")},
    ],
)
def test_bad_pool_arguments_are_refused(kwargs: Dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make(**kwargs)


def test_a_fed_client_keeps_every_subscription_on_one_connection() -> None:
    client = make(subscription_limits={"v4_trades": 1})
    client.subscribe_trades("A-USD")
    client.subscribe_trades("B-USD")
    client.start(connect=False)
    try:
        client.subscribe_trades("C-USD")
        assert placed(client) == [{"v4_trades": 3}]
    finally:
        client.stop()
