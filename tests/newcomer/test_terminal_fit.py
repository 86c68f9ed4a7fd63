"""Friction: on an 80x24 terminal the demo dashboard and ``book`` at its default depth fit, with
the mid/spread line on screen (rendered by rich exactly as the live views draw them, from a
client fed by the emulator)."""

from __future__ import annotations

import io
import time
from typing import Iterator, Tuple

import pytest

pytest.importorskip("rich")
from rich.console import Console

from dydx_ws import DydxWebSocketClient
from dydx_ws.cli import _demo as demo
from dydx_ws.cli import _views as views
from dydx_ws.emulator import IndexerEmulator

MARKETS = ["BTC-USD", "ETH-USD"]


@pytest.fixture(scope="module")
def live() -> Iterator[Tuple[DydxWebSocketClient, demo._View]]:
    with IndexerEmulator(markets=MARKETS, seed=1, block_time=0.1) as emu:
        with DydxWebSocketClient(network=emu.network, workers=2, check_interval=None) as client:
            state = demo._State()
            demo._subscribe_all(client, MARKETS, emu.demo_address, state.on_message)
            for sub in client.subscriptions():
                assert sub.wait_subscribed(20)
            view = demo._View(client, state, MARKETS, emu.demo_address, 20.0, time.monotonic())
            yield client, view


def _draw(renderable: object, width: int, height: int) -> str:
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30)])
def test_the_demo_dashboard_fits_the_terminal(live: tuple, width: int, height: int) -> None:
    _, view = live
    out = _draw(view.render(lines=height), width, height)
    lines = out.splitlines()
    assert len(lines) <= height - 1, out
    assert max(len(line) for line in lines) <= width
    assert out.count("spread") == 2 and "equity" in out and "messages" in out, out


def test_a_tall_terminal_gets_the_full_dashboard(live: tuple) -> None:
    _, view = live
    out = _draw(view.render(lines=60), 120, 60)
    assert "last trades" in out and "current 1MIN candle" in out
    assert len(out.splitlines()) <= 59


@pytest.mark.parametrize("height", [24, 15])
def test_book_at_its_default_depth_fits_with_mid_and_spread(live: tuple, height: int) -> None:
    client, _ = live
    depth = views.fit_depth(10, height)  # book's default --depth is 10
    out = _draw(views.book_table(client.order_book("BTC-USD"), depth), 80, height)
    assert len(out.splitlines()) <= height - 1, out
    assert "spread" in out.splitlines()[-1] or "spread" in out.splitlines()[-2]
    assert views.fit_depth(10, 60) == 10  # a tall terminal gets what was asked
