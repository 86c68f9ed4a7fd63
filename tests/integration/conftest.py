"""Fixtures for client integration tests (helpers live in tests/helpers/sdk_client.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import FAST_EMULATOR


@pytest.fixture
def emulator() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=7, **FAST_EMULATOR) as emu:
        yield emu
