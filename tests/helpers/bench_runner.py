"""Run a bench/ script as a subprocess (the smoke tests of tests/integration/test_bench_*.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: float = 180) -> str:
    """``bench/<script> args``: its stdout; fails the test if it exits non-zero."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        cwd=str(ROOT),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout
