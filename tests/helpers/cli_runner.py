"""Running ``dydx-ws`` (``python -m dydx_ws.cli``) as a subprocess from the repository root, with
the repository on ``PYTHONPATH``, bounded by a hard timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

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
