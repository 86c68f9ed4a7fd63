"""bench/sinks.py runs end to end with tiny parameters (a smoke test, not a measurement): a real
``redis-server`` (tests/helpers/redis_server.py, as the sink tests get it) and a Parquet folder
store every frame of a loopback flood, and the table with the ratio to the no-sink column is
printed."""

from __future__ import annotations

import re

from tests.helpers.bench_runner import run_bench

RATE = r"[\d,]+"


def test_sinks_bench_prints_the_ratio_to_no_sink() -> None:
    out = run_bench("sinks.py", "--rounds", "1", "--messages", "1500")
    assert re.search(
        r"^order book updates \(\d+ B\) x1500, 1 rounds in rotating order, medians$", out, re.M
    ), out
    assert re.search(r"callbacks msg/s\s+vs no sink\s+into sink msg/s$", out, re.M), out
    assert re.search(rf"^no sink\s+{RATE}\s+1\.00x\s+-$", out, re.M), out
    for sink in ("RedisStreamSink", "ParquetSink"):
        assert re.search(rf"^{sink}\s+{RATE}\s+[\d.]+x\s+{RATE}$", out, re.M), out
