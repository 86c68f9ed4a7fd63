"""Fixtures for client integration tests (helpers live in support.py)."""

from __future__ import annotations

from typing import Iterator

import pytest
from support import FAST_EMULATOR

from dydx_ws.emulator import IndexerEmulator


@pytest.fixture
def emulator() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=7, **FAST_EMULATOR) as emu:
        yield emu
