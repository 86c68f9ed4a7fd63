"""Every example script runs against the emulator (``--emulator``, bounded by ``--duration``) as a
subprocess and exits 0; the notebook executes top to bottom headless (nbclient)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _run(script: str, args: List[str], timeout: float = 90.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(ROOT),
    )


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("quickstart.py", "messages per channel"),
        ("orderbook_monitor.py", "spread"),
        ("subaccount_monitor.py", "free collateral"),
        ("legacy_queue.py", "done:"),
    ],
)
def test_example_runs_against_the_emulator(script: str, expect: str) -> None:
    r = _run(script, ["--emulator", "--duration", "2"])
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout
    assert "Traceback" not in r.stderr


def test_candles_dataframe_saves_a_png(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    png = tmp_path / "candles.png"
    r = _run("candles_dataframe.py", ["--emulator", "--duration", "1", "--out", str(png)])
    assert r.returncode == 0, r.stderr
    assert "chart saved" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    tested = {"quickstart.py", "orderbook_monitor.py", "subaccount_monitor.py"}
    tested |= {"legacy_queue.py", "candles_dataframe.py", "replay_backtest.py"}
    assert scripts <= tested, scripts - tested


def test_replay_backtest_example(tmp_path: Path) -> None:
    r = _run(
        "replay_backtest.py",
        ["--emulator", "--duration", "2", "--file", str(tmp_path / "r.jsonl.gz")],
    )
    assert r.returncode == 0, r.stderr
    assert "replayed" in r.stdout


def test_notebook_executes_headless() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("pandas")
    nb = nbformat.read(str(EXAMPLES / "notebook.ipynb"), as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("DydxWebSocketClient" in h for h in html)  # the status card
    assert any("<table>" in h and "bid" in h for h in html)  # the order book depth table
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot
    last = nb.cells[-1].outputs[-1]["data"]["text/plain"]
    assert last == "[]"  # no client or emulator thread left


KERNEL_CELL = """
import threading, dydx_ws, dydx_ws.notebook as nb
client = dydx_ws.DydxWebSocketClient(url={url!r})
{track}
client.start()
assert client.wait_connected(10)
print(sum(t.name.startswith("dydx-ws") for t in threading.enumerate()))
"""


def _kernel_rerun(url: str, track: str) -> List[str]:
    pytest.importorskip("ipykernel")
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        outputs: List[str] = []
        for _ in range(3):
            texts: List[str] = []

            def hook(msg: dict, texts: List[str] = texts) -> None:
                content = msg.get("content", {})
                texts.append(str(content.get("text") or content.get("evalue") or ""))

            reply = kc.execute_interactive(
                KERNEL_CELL.format(url=url, track=track), timeout=60, output_hook=hook
            )
            assert reply["content"]["status"] == "ok", texts
            outputs.append("".join(texts).strip())
        reply = kc.execute_interactive("client.stop(); nb.stop_all()", timeout=60)
        assert reply["content"]["status"] == "ok"
        return outputs
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def emu_url():
    from dydx_ws.emulator import IndexerEmulator

    with IndexerEmulator(markets=["BTC-USD"]) as emu:
        yield emu.ws_url


def test_rerunning_a_cell_stops_the_previous_client(emu_url: str) -> None:
    """The mechanism (dydx_ws.notebook.track), invoked explicitly when the client does not yet."""
    outputs = _kernel_rerun(emu_url, "if not nb.is_tracked(client): nb.track(client)")
    assert len(set(outputs)) == 1, outputs  # same thread count after every re-run


def test_client_tracks_itself_in_a_notebook(emu_url: str) -> None:
    """The documented behaviour: the client's constructor calls dydx_ws.notebook.track."""
    outputs = _kernel_rerun(emu_url, "assert nb.is_tracked(client)")
    assert len(set(outputs)) == 1, outputs


def test_status_card_html() -> None:
    from dydx_ws import DydxWebSocketClient
    from dydx_ws.notebook import status_html

    client = DydxWebSocketClient(url="ws://127.0.0.1:9/v4/ws")
    client.subscribe_trades("BTC-USD")
    card = status_html(client)
    assert "not started" in card and "v4_trades/BTC-USD" in card
    client.start()
    assert "connecting" in status_html(client) or "connected" in status_html(client)
    client.stop()
    assert "stopped" in status_html(client)
    assert not [t for t in threading.enumerate() if t.name.startswith("dydx-ws-io")]
