"""bench/pool.py runs end to end with tiny parameters (a smoke test, not a measurement): 40
markets x 3 channels put the pool on two connections and the one-connection variant on one, every
update is delivered, and the table, the ratio line and the target verdict are printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pool_bench_prints_the_ratio_to_one_connection() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = ["--rounds", "1", "--markets", "40", "--messages", "1200"]
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pool.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=str(ROOT),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "120 subscriptions (40 markets x 3 channels), 1,200 updates per run" in out
    assert re.search(r"^pool\s+2\s+2\s+[\d,]+\s+[\d.]+ us", out, re.M), out
    assert re.search(r"^one\s+1\s+1\s+[\d,]+\s+[\d.]+ us", out, re.M), out
    assert re.search(
        r"^pool cost per message vs one connection: CPU/msg [\d.]+x, msg/s [\d.]+x", out, re.M
    ), out
    assert re.search(
        r"^target CPU/msg <= 1\.10x one connection's: (holds|does NOT hold)", out, re.M
    )
    assert out.count("load average") == 2
