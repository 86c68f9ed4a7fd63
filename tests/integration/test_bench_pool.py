"""bench/pool.py runs end to end with tiny parameters (a smoke test, not a measurement): 40
markets x 3 channels put the pool on two connections and the one-connection variant on one, every
update is delivered, and the table, the ratio line and the target verdict are printed."""

from __future__ import annotations

import re

from tests.helpers.bench_runner import run_bench


def test_pool_bench_prints_the_ratio_to_one_connection() -> None:
    out = run_bench("pool.py", "--rounds", "1", "--markets", "40", "--messages", "1200")
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
