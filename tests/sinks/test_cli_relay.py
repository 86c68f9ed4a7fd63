"""``dydx-ws relay`` into a real Redis and a Parquet directory, then ``dydx-ws history``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import redis

from tests.helpers.redis_server import RedisServer
from tests.sinks.stream_support import emulator

ROOT = Path(__file__).resolve().parents[2]
DYDX_WS = [sys.executable, "-m", "dydx_ws.cli"]


def _env() -> dict:  # type: ignore[type-arg]
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))


def test_relay_writes_both_sinks_reports_status_and_stops_cleanly_on_ctrl_c(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with emulator() as emu:
        argv = [
            *DYDX_WS, "relay", "--network", emu.ws_url, "--redis", redis_server.url,
            "--parquet", str(data), "--status-interval", "0.3",
            "orderbook:BTC-USD", "trades:BTC-USD", "markets",
        ]  # fmt: skip
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=_env())
        try:
            assert proc.stderr is not None
            lines = []
            while len([x for x in lines if "redis" in x and "/s" in x]) < 3:
                line = proc.stderr.readline()
                assert line, "".join(lines)
                lines.append(line)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    status = [x for x in lines if "/s" in x][-1]
    assert "queue" in status and "dropped 0" in status and "parquet" in status
    assert status.rstrip().endswith("| connections 1 (1 connected)")  # the pool
    r = redis.Redis.from_url(redis_server.url)
    assert r.xlen("dydx:v4_orderbook:BTC-USD") > 0 and r.xlen("dydx:v4_markets") > 0
    r.close()
    assert not list(data.rglob("*.tmp"))  # Ctrl-C completed the open files
    out = subprocess.run(
        [*DYDX_WS, "history", str(data), "--json"], capture_output=True, text=True, env=_env()
    )
    assert out.returncode == 0, out.stderr
    tables = json.loads(out.stdout)
    assert tables["v4_orderbook"]["rows"] > 0 and tables["frames"]["files"] >= 1
    text = subprocess.run(
        [*DYDX_WS, "history", str(data)], capture_output=True, text=True, env=_env()
    )
    assert "v4_orderbook" in text.stdout and "rows" in text.stdout


def test_relay_needs_a_sink() -> None:
    out = subprocess.run([*DYDX_WS, "relay", "markets"], capture_output=True, text=True, env=_env())
    assert out.returncode == 2 and "--redis" in out.stderr
