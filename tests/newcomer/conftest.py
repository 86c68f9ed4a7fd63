"""An emulator served by the test process for the user-style scripts of this directory."""

from __future__ import annotations

from typing import Iterator

import pytest

from dydx_ws.emulator import IndexerEmulator


@pytest.fixture(scope="module")
def emu() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(
        markets=["BTC-USD", "ETH-USD"],
        seed=5,
        block_time=0.05,
        batch_interval=0.1,
        warmup_blocks=60,
        close_timeout=0.5,
    ) as e:
        yield e
