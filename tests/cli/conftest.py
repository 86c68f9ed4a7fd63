"""Fixtures for the CLI tests: one emulator per module (``dydx-ws`` runs as a subprocess through
tests/helpers/cli_runner.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from dydx_ws.emulator import IndexerEmulator


@pytest.fixture(scope="module")
def emu() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, block_time=0.3) as e:
        yield e
