"""Every benchmark script imports and parses its options: ``--help`` prints its usage and exits
at once (an import-level check, so a refactor of the shared bench modules cannot break a script
silently; not a run: bench/pool.py and bench/sinks.py have their own tiny runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


def test_every_benchmark_is_covered() -> None:
    assert {"book.py", "decode.py", "dispatch.py", "pool.py", "sinks.py"} <= set(SCRIPTS)
    assert {"stages.py", "throughput.py", "versus.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_imports_and_prints_its_usage(script: str) -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"usage: {script} "), r.stdout
