"""Bug 6: a user's script with callbacks typed by their message class passes mypy (strict, the
project's setup.cfg), and a callback given to the wrong channel is a type error (so the check can
fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _mypy(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(ROOT),
    )


def test_typed_callbacks_pass_mypy_strict() -> None:
    r = _mypy(HERE / "user_script.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout


def test_a_callback_for_another_channel_is_a_type_error(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_channel.py"
    wrong.write_text(
        "from dydx_ws import DydxWebSocketClient, TradesMessage\n"
        "def on_trades(msg: TradesMessage) -> None: ...\n"
        "client = DydxWebSocketClient(url='ws://127.0.0.1:9/v4/ws')\n"
        "client.subscribe_orderbook('BTC-USD', on_trades)\n"
    )
    r = _mypy(wrong)
    assert r.returncode == 1, r.stdout
    assert 'Argument 2 to "subscribe_orderbook"' in r.stdout, r.stdout
