"""``dydx-ws emulator --markets``: a count (``300``: a mainnet-sized list) or comma-separated
tickers; anything else is a usage error (exit 2, the reason on the last line of stderr)."""

from __future__ import annotations

import signal
import subprocess
from typing import List

import pytest
import requests

from tests.helpers.cli_runner import DYDX_WS, ROOT, cli_env, run_cli

pytestmark = pytest.mark.timeout(120)


def served_markets(markets: str) -> List[str]:
    """Run the emulator with ``--markets markets`` and return the tickers its REST lists."""
    proc = subprocess.Popen(
        [*DYDX_WS, "emulator", "--port", "0", "--block-time", "0.2", "--markets", markets],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("WebSocket: ws://127.0.0.1:")
        rest_url = proc.stdout.readline().split()[-1]
        body = requests.get(rest_url + "/v4/perpetualMarkets", timeout=10).json()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        return list(body["markets"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_count_serves_that_many_markets() -> None:
    tickers = served_markets("300")
    assert len(tickers) == len(set(tickers)) == 300
    assert tickers[:3] == ["BTC-USD", "ETH-USD", "SOL-USD"]


def test_a_comma_list_serves_those_markets() -> None:
    assert served_markets("SOL-USD, ETH-USD") == ["SOL-USD", "ETH-USD"]


@pytest.mark.parametrize(
    ("markets", "text"),
    [
        ("0", "a market count is 1-5000, got 0"),
        ("5001", "a market count is 1-5000, got 5001"),
        ("-3", "not a perpetual ticker: '-3'"),
        ("3x", "not a perpetual ticker: '3x'"),
        ("btc-usd", "did you mean 'BTC-USD'"),
        (",", "expected at least one ticker"),
    ],
)
def test_bad_markets_are_a_usage_error(markets: str, text: str) -> None:
    r = run_cli(["emulator", f"--markets={markets}"])
    assert r.returncode == 2, (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]  # argparse's usage, then the error line
    assert last.startswith("dydx-ws emulator: error: argument --markets: ") and text in last
    assert "Traceback" not in r.stderr


def test_help_names_the_count() -> None:
    r = run_cli(["emulator", "--help"])
    assert r.returncode == 0
    assert "or a count (e.g. 300: a mainnet-sized list)" in " ".join(r.stdout.split())
