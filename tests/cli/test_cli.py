"""``dydx-ws`` commands run as subprocesses against a local emulator: output, exit codes, bounds,
bad arguments, unreachable networks and Ctrl-C."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.helpers.cli_runner import DYDX_WS, ROOT, cli_env, run_cli, run_in_pty

CHANNELS = {
    "v4_trades",
    "v4_orderbook",
    "v4_candles",
    "v4_markets",
    "v4_subaccounts",
    "v4_parent_subaccounts",
    "v4_block_height",
}


def _json_lines(text: str) -> List[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- demo ------------------------------------------------------------------------------------------
def test_demo_shows_all_seven_channels_and_exits_0() -> None:
    r = run_cli(["demo", "--duration", "3"])
    assert r.returncode == 0, r.stderr
    assert "data received from all seven channels" in r.stdout
    for channel in CHANNELS:
        assert channel in r.stdout
    assert "height" in r.stdout and "equity" in r.stdout  # the live status lines
    assert "pool: 1 connection (1 connected) · subscriptions " in r.stdout  # in the summary


def test_demo_json_summary() -> None:
    r = run_cli(["demo", "--duration", "2.5", "--json", "--markets", "ETH-USD,SOL-USD"])
    assert r.returncode == 0, r.stderr
    (line,) = _json_lines(r.stdout)
    summary = line["summary"]
    assert set(summary["messages"]) == CHANNELS
    assert all(n > 0 for n in summary["messages"].values()), summary
    assert summary["missing"] == [] and summary["callback_errors"] == 0
    assert summary["block_height"] > 0
    pool = summary["pool"]
    assert (pool["connections"], pool["connected"]) == (1, 1)
    assert set(pool["subscriptions"]) == CHANNELS and pool["subscriptions"]["v4_trades"] == 2


def test_demo_rejects_bad_markets() -> None:
    r = run_cli(["demo", "--markets", "BTC-USD", "--duration", "1"])
    assert r.returncode == 2
    assert "exactly two markets" in r.stderr


# -- watch -----------------------------------------------------------------------------------------
def test_watch_trades_count(emu) -> None:
    r = run_cli(["watch", "v4_trades", "BTC-USD", "--count", "3", "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    assert "snapshot" in lines[0] and "BTC-USD" in lines[0]
    assert all("trades" in line for line in lines)


@pytest.mark.parametrize(
    ("channel", "ids"),
    [
        ("v4_candles", ["BTC-USD/1MIN"]),
        ("orderbook", ["ETH-USD"]),
        ("markets", []),
        ("block_height", []),
        ("subaccounts", ["{addr}/0"]),
        ("parent", ["{addr}/0"]),
    ],
)
def test_watch_json(emu, channel: str, ids: List[str]) -> None:
    ids = [i.format(addr=emu.demo_address) for i in ids]
    r = run_cli(["watch", channel, *ids, "--json", "--count", "2", "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    messages = _json_lines(r.stdout)
    assert len(messages) == 2
    assert messages[0]["type"] == "subscribed" and messages[0]["is_snapshot"] is True
    assert messages[0]["channel"] in CHANNELS
    assert all(m["received_at"] > 0 for m in messages)


def test_watch_duration_bounds_the_run(emu) -> None:
    start = time.monotonic()
    r = run_cli(["watch", "block_height", "--duration", "1", "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - start < 15
    assert "height" in r.stdout


# -- book ------------------------------------------------------------------------------------------
def test_book_json(emu) -> None:
    r = run_cli(
        ["book", "BTC-USD", "--depth", "3", "--json", "--count", "2", "--network", emu.ws_url]
    )
    assert r.returncode == 0, r.stderr
    ladders = _json_lines(r.stdout)
    assert ladders
    last = ladders[-1]
    assert last["ticker"] == "BTC-USD" and 0 < len(last["bids"]) <= 3 and len(last["asks"]) <= 3
    assert float(last["bids"][0][0]) < float(last["asks"][0][0])


def test_book_text(emu) -> None:
    r = run_cli(["book", "ETH-USD", "--duration", "1.2", "--depth", "2", "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    assert "ETH-USD  mid" in r.stdout
    assert r.stdout.count("ask ") >= 2 and r.stdout.count("bid ") >= 2


# -- record / replay -------------------------------------------------------------------------------
def test_record_then_replay(emu, tmp_path: Path) -> None:
    out = tmp_path / "book.jsonl.gz"
    args = ["record", "--out", str(out), "orderbook", "BTC-USD", "--count", "10"]
    r = run_cli([*args, "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    assert "recorded" in r.stderr
    with gzip.open(out, "rt") as f:
        lines = [json.loads(line) for line in f]
    assert lines[0]["dydx_ws_recording"] == 1
    frames = lines[1:]
    assert all(isinstance(x["frame"], str) and x["received_at"] > 0 for x in frames)
    data = [json.loads(x["frame"]) for x in frames]
    assert sum(d.get("channel") == "v4_orderbook" for d in data) == 10

    r = run_cli(["replay", str(out), "--speed", "0", "--json"])
    assert r.returncode == 0, r.stderr
    messages = _json_lines(r.stdout)
    assert len(messages) == 10
    assert messages[0]["is_snapshot"] and messages[0]["channel"] == "v4_orderbook"
    recorded = [x["received_at"] for x in frames if '"v4_orderbook"' in x["frame"]]
    assert [m["received_at"] for m in messages] == pytest.approx(recorded)
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    assert summary["per_channel"] == {"v4_orderbook": 10} and summary["decode_errors"] == 0

    r = run_cli(["replay", str(out), "--speed", "0", "--count", "4"])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 4
    assert "replayed" in r.stderr


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["watch", "nope"], "unknown channel"),
        (["watch", "trades"], "needs at least one id"),
        (["watch", "trades", "BTCUSD"], "BTCUSD"),
        (["watch", "markets", "BTC-USD"], "takes no id"),
        (["watch", "subaccounts", "dydx1bad/0"], "address"),
        (["watch", "trades", "BTC-USD", "--duration", "-1"], "expected a number > 0"),
        (["watch", "trades", "BTC-USD", "--network", "moon"], "unknown network"),
        (["book", "BTC-USD", "--depth", "0"], "integer >= 1"),
        (["replay", "/nonexistent/recording.jsonl"], "no such recording"),
        (["replay", "x.jsonl", "--speed", "fast"], "expected a number"),
        (["record", "trades", "BTC-USD"], "--out"),
    ],
)
def test_bad_arguments_exit_2(args: List[str], text: str) -> None:
    r = run_cli(args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert text in r.stderr
    assert "Traceback" not in r.stderr


def test_malformed_recording_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"received_at": 1, "frame": "{}"}\nnot json\n')
    r = run_cli(["replay", str(bad)])
    assert r.returncode == 2
    assert "bad.jsonl:2" in r.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["watch", "record"])
def test_unreachable_network_exit_3(command: str, tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}/v4/ws"
    extra = ["--out", str(tmp_path / "x.jsonl")] if command == "record" else []
    r = run_cli([command, *extra, "trades", "BTC-USD", "--network", url, "--connect-timeout", "1"])
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "cannot connect" in r.stderr and url in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.jsonl").exists()  # no empty recording left behind
    assert "recorded" not in r.stderr


def test_refused_subscription_exit_4(emu) -> None:
    r = run_cli(["watch", "trades", "NOPE-USD", "--duration", "5", "--network", emu.ws_url])
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "refused" in r.stderr and "NOPE-USD" in r.stderr


# -- Ctrl-C ----------------------------------------------------------------------------------------
def _interrupt(argv: List[str]) -> Tuple[str, str, int]:
    """Start ``dydx-ws argv``, wait for its first output line (it runs and receives data),
    send SIGINT, and return (first line + the rest of stdout, stderr, exit code)."""
    proc = subprocess.Popen(
        [*DYDX_WS, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.strip(), proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return first + out, err, proc.returncode


@pytest.mark.parametrize("command", [["watch", "block_height"], ["book", "BTC-USD"]])
def test_ctrl_c_exits_130(emu, command: List[str]) -> None:
    interval = ["--interval", "0.2"] if command[0] == "book" else []
    _, err, code = _interrupt([*command, "--network", emu.ws_url, *interval])
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_demo_ctrl_c_prints_summary_and_exits_130() -> None:
    out, err, code = _interrupt(["demo"])
    assert "height" in out.splitlines()[0]  # the first status line (after ~1 s)
    assert code == 130, err
    assert "demo summary" in out and "Traceback" not in err


# -- terminal (rich) views -------------------------------------------------------------------------
def test_rich_views_on_a_terminal(emu, tmp_path: Path) -> None:
    rc, text = run_in_pty(["demo", "--duration", "2"])
    assert rc == 0, text[-2000:]
    assert "last trades" in text and "data received from all seven channels" in text

    rc, text = run_in_pty(
        ["book", "BTC-USD", "--duration", "1", "--depth", "3", "--network", emu.ws_url]
    )
    assert rc == 0, text[-2000:]
    assert "BTC-USD" in text and "bid" in text and "ask" in text

    out = tmp_path / "r.jsonl"
    assert run_cli(["record", "-o", str(out), "trades", "BTC-USD", "--count", "3",
                    "--network", emu.ws_url]).returncode == 0  # fmt: skip
    rc, text = run_in_pty(["replay", str(out), "--speed", "0"])
    assert rc == 0, text[-2000:]
    assert "replayed" in text
