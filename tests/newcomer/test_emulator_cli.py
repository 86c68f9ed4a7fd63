"""Bug 7 and the missing extra: ``dydx-ws emulator`` ends bad arguments with one line and exit 2
(no traceback); without the ``emulator`` extra the command and ``from dydx_ws.emulator import``
name the extra to install; ``emulator --help`` explains every option with its default."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import List

import pytest

from tests.helpers.user_scripts import ROOT, script_env

# Runs the CLI as if the websockets package were not installed.
WITHOUT_WEBSOCKETS = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "websockets" or name.startswith("websockets."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Block())
"""


def _run(args: List[str], prelude: str = "", timeout: float = 30) -> subprocess.CompletedProcess:
    code = (
        prelude + "\nimport sys\nfrom dydx_ws.cli._main import main\nsys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=script_env(),
        cwd=str(ROOT),
    )


@pytest.fixture
def busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s
    s.close()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--markets", "FOO"], "not a perpetual ticker: 'FOO'"),
        (["--markets", "btc-usd"], "did you mean 'BTC-USD'"),
        (["--port", "99999"], "a port is 0-65535"),
        (["--block-time", "0"], "expected a number of seconds > 0"),
        (["--block-time", "-1"], "expected a number of seconds > 0"),
        (["--heartbeat-interval", "0"], "expected a number of seconds > 0"),
    ],
)
def test_bad_emulator_arguments_exit_2_with_one_line(args: List[str], text: str) -> None:
    r = _run(["emulator", *args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert text in r.stderr
    assert "Traceback" not in r.stderr


def test_a_port_in_use_exits_2_with_one_line(busy_port: socket.socket) -> None:
    port = busy_port.getsockname()[1]
    r = _run(["emulator", "--port", str(port)])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "address already in use" in lines[0], r.stderr


def test_without_the_extra_the_emulator_names_it() -> None:
    r = _run(["emulator"], prelude=WITHOUT_WEBSOCKETS)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "pip install 'dydx_ws[emulator]'" in r.stderr
    code = WITHOUT_WEBSOCKETS + (
        "try:\n    from dydx_ws.emulator import IndexerEmulator\n"
        "except ImportError as exc:\n    print('ImportError:', exc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=script_env(),
        cwd=str(ROOT),
    )
    assert "ImportError: dydx_ws.emulator needs the 'emulator' extra" in r.stdout, r.stderr


def test_emulator_help_explains_options_and_defaults() -> None:
    r = _run(["emulator", "--help"])
    assert r.returncode == 0
    for text in (
        "seconds per block (default: 1.0)",
        "(default: BTC-USD,ETH-USD)",
        "seed of the market simulator (default: 0)",
        "address to listen on",
    ):
        assert text in " ".join(r.stdout.split()), r.stdout
