"""Fixtures for the emulator's conversation tests (the raw clients live in
tests/helpers/raw_ws.py)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.raw_ws import FAST, Raw, emulator_threads
from tests.helpers.waiting import wait_until


@pytest.fixture
def emu() -> Iterator[IndexerEmulator]:
    emulator = IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, **FAST)  # type: ignore[arg-type]
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def make_emu() -> Iterator[Callable[..., IndexerEmulator]]:
    started: List[IndexerEmulator] = []

    def make(**kwargs: Any) -> IndexerEmulator:
        options: Dict[str, Any] = {**FAST, "markets": ["BTC-USD", "ETH-USD"], "seed": 5, **kwargs}
        emulator = IndexerEmulator(**options)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def client(emu: IndexerEmulator) -> Iterator[Callable[..., Raw]]:
    opened: List[Raw] = []

    def connect(url: Optional[str] = None) -> Raw:
        raw = Raw(url or emu.ws_url)
        opened.append(raw)
        return raw

    yield connect
    for raw in opened:
        raw.close()


@pytest.fixture
def raw_clients() -> Iterator[Callable[[str], Raw]]:
    opened: List[Raw] = []

    def connect(url: str) -> Raw:
        raw = Raw(url)
        opened.append(raw)
        return raw

    yield connect
    for raw in opened:
        raw.close()


@pytest.fixture(autouse=True)
def _no_emulator_thread_left() -> Iterator[None]:
    yield
    wait_until(lambda: not emulator_threads(), timeout=15)
