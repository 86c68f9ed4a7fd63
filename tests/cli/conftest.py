"""Fixtures for the CLI tests: one emulator per module and a helper that runs ``dydx-ws`` as a
subprocess (bounded by ``--duration``/``--count`` and a hard timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from dydx_ws.emulator import IndexerEmulator

DYDX_WS = [sys.executable, "-m", "dydx_ws.cli"]
ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: List[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DYDX_WS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=str(ROOT),
    )


@pytest.fixture(scope="module")
def emu() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, block_time=0.3) as e:
        yield e
