"""The notebook status card (``client._repr_html_``, dydx_ws/notebook.py) shows the connection
pool: one table row per connection (index, state, shortened server id, subscriptions per
channel, frames, last message age, reconnects) and the subscriptions per channel in all, against
the emulator over real sockets."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, Iterator, List

import pytest

from dydx_ws import DydxWebSocketClient
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.notebook import SUBSCRIPTION_ROWS
from tests.helpers.sdk_client import FAST_EMULATOR, FAST_RECONNECT
from tests.helpers.waiting import wait_until

TIMEOUT = 30.0


class Tables(HTMLParser):
    """Every ``<table>`` of a page: its header cells and its rows of cell texts."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: List[List[List[str]]] = []
        self._row: List[str] = []
        self._cell: List[str] = []
        self._in_cell = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._in_cell = [], True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._row.append("".join(self._cell).strip())
            self._in_cell = False
        elif tag == "tr":
            self.tables[-1].append(self._row)

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self._cell.append(data)

    def with_header(self, first: str) -> List[List[str]]:
        """The rows (header excluded) of the table whose first header cell is ``first``."""
        (table,) = [t for t in self.tables if t and t[0] and t[0][0] == first]
        return table[1:]


@pytest.fixture(scope="module")
def emu() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=30, seed=5, **FAST_EMULATOR) as e:
        yield e


def client_for(emu: IndexerEmulator, **kwargs: Any) -> DydxWebSocketClient:
    return DydxWebSocketClient(
        url=emu.ws_url, reconnect=FAST_RECONNECT, check_interval=None, idle_limits=None, **kwargs
    )


def test_the_card_lists_one_row_per_connection(emu: IndexerEmulator) -> None:
    tickers = emu.config.markets[:3]
    with client_for(emu, subscription_limits={"v4_trades": 1}) as client:
        subs = [client.subscribe_trades(t) for t in tickers]
        assert client.wait_connected(TIMEOUT)
        for sub in subs:
            assert sub.wait_subscribed(TIMEOUT)
        wait_until(lambda: all(c["frames"] > 1 for c in client.stats()["connections"]), TIMEOUT)
        stats = client.stats()
        page = client._repr_html_()

    rows = Tables(page).with_header("#")
    assert [r[0] for r in rows] == ["0", "1", "2"]
    ids = {c["index"]: c["id"] for c in stats["connections"]}
    for row in rows:
        index, state, short_id, per_channel, frames, last, reconnects = row
        assert state == "connected"
        assert short_id == ids[int(index)][:8] + "…"  # shortened; the full id on hover
        assert f"title='{ids[int(index)]}'" in page
        assert per_channel == "trades 1"
        assert int(frames) > 1 and reconnects == "0" and last != "—"
    assert "3 connections · subscriptions trades 3" in page
    subscriptions = Tables(page).with_header("subscription")
    assert sorted(r[0] for r in subscriptions) == sorted(f"v4_trades/{t}" for t in tickers)


def test_many_subscriptions_are_summed_per_channel(emu: IndexerEmulator) -> None:
    """Past ``SUBSCRIPTION_ROWS`` the card shows one row per channel, and stays one row per
    connection for a dozen connections."""
    tickers = emu.config.markets[:24]
    assert len(tickers) > SUBSCRIPTION_ROWS
    with client_for(emu, subscription_limits={"v4_orderbook": 2}) as client:
        group = client.subscribe_orderbook(tickers)
        client.subscribe_block_height()
        assert client.wait_connected(TIMEOUT)
        assert group.wait_subscribed(TIMEOUT)
        page = client._repr_html_()

    tables = Tables(page)
    connections = tables.with_header("#")
    assert len(connections) == 12
    assert connections[0][3] == "block_height 1 orderbook 2"
    assert all(r[3] == "orderbook 2" for r in connections[1:])
    assert "12 connections · subscriptions block_height 1, orderbook 24" in page
    per_channel = {r[0]: r[1:] for r in tables.with_header("channel")}
    assert set(per_channel) == {"v4_orderbook", "v4_block_height"}
    assert per_channel["v4_orderbook"][:2] == ["24", "24"]  # subscriptions, active
    assert "v4_orderbook/" not in page  # no row per subscription


def test_the_card_of_a_client_not_started() -> None:
    client = DydxWebSocketClient(url="ws://127.0.0.1:9/v4/ws")
    client.subscribe_trades("BTC-USD")
    rows = Tables(client._repr_html_()).with_header("#")
    assert rows == [["0", "not started", "—", "trades 1", "0", "—", "0"]]
    client.stop()
