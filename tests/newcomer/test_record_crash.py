"""Bugs 3 and 4: ``dydx-ws record`` against the emulator, as a user runs it. A recording killed
with ``kill -9`` replays up to the last flush (at most ~1 s lost, ``.gz`` and plain); a file cut
mid-line replays up to the cut with a warning; a market the server refuses fails the command
(exit 4, the server's text); progress shows from the first frame."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dydx_ws.emulator import IndexerEmulator
from dydx_ws.replay import read_frames
from tests.helpers.user_scripts import ROOT, script_env

DYDX_WS = [sys.executable, "-m", "dydx_ws.cli"]


def _cli(args: list, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DYDX_WS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=script_env(),
        cwd=str(ROOT),
    )


@pytest.mark.parametrize("name", ["books.jsonl.gz", "books.jsonl"])
def test_kill_9_during_record_keeps_all_but_the_last_second(
    tmp_path: Path, emu: IndexerEmulator, name: str
) -> None:
    out = tmp_path / name
    proc = subprocess.Popen(
        [
            *DYDX_WS,
            "record",
            "--out",
            str(out),
            "orderbook",
            "BTC-USD",
            "ETH-USD",
            "--network",
            emu.ws_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=script_env(),
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # progress from the first frame
        assert "frame(s)" in first, first
        time.sleep(3.0)  # recording time, not synchronisation: the file must hold this span
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.stat().st_size > 0
    frames = list(read_frames(out))
    assert len(frames) > 10
    channels = {f.data.split('"id":"')[1][:7] for f in frames if '"id":"' in f.data}
    assert {"BTC-USD", "ETH-USD"} <= channels
    assert killed_at - frames[-1].received_at < 1.5  # flushed every 0.5 s (measured: ~0.5 s)


def test_a_file_cut_mid_line_replays_up_to_the_cut(tmp_path: Path, emu: IndexerEmulator) -> None:
    whole = tmp_path / "whole.jsonl"
    r = _cli(
        [
            "record",
            "--out",
            str(whole),
            "trades",
            "BTC-USD",
            "--network",
            emu.ws_url,
            "--count",
            "3",
        ]
    )
    assert r.returncode == 0, r.stderr
    data = whole.read_bytes()
    assert data.endswith(b"\n")
    n = len(list(read_frames(whole)))
    cut = tmp_path / "cut.jsonl.gz"
    with gzip.open(cut, "wb") as f:
        f.write(data[: len(data) - 10])  # the last line loses its end
    cut_raw = tmp_path / "cut_raw.jsonl.gz"
    cut_raw.write_bytes(cut.read_bytes()[:-8])  # and a gzip stream without its trailer
    for path in (cut, cut_raw):
        r = _cli(["replay", str(path), "--speed", "0", "--quiet"])
        assert r.returncode == 0, r.stderr
        assert "cut" in r.stderr, r.stderr
        assert len(list(read_frames(path))) == n - 1


def test_record_fails_on_a_refused_market(tmp_path: Path, emu: IndexerEmulator) -> None:
    for ids in (["FOO-USD"], ["BTC-USD", "FOO-USD"]):
        out = tmp_path / "refused.jsonl"
        r = _cli(
            [
                "record",
                "--out",
                str(out),
                "trades",
                *ids,
                "--network",
                emu.ws_url,
                "--duration",
                "20",
            ],
            timeout=60,
        )
        assert r.returncode == 4, (r.stdout, r.stderr)
        assert "refused by the server" in r.stderr and "FOO-USD" in r.stderr
        assert "Traceback" not in r.stderr
