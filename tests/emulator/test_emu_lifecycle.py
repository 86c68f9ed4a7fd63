"""Start-up latency, clean shutdown (no thread or socket left), idempotency, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List

import pytest
import requests

from dydx_ws.emulator import IndexerEmulator
from dydx_ws.network import Network
from tests.helpers.raw_ws import FAST, Raw, emulator_threads
from tests.helpers.waiting import fd_count, wait_until

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def test_startup_to_first_connected_under_one_second() -> None:
    started = time.monotonic()
    emu = IndexerEmulator(markets=["BTC-USD", "ETH-USD"])
    emu.start()
    try:
        raw = Raw(emu.ws_url)
        assert raw.connected()["message_id"] == 0
        assert time.monotonic() - started < 1.0
        raw.close()
    finally:
        emu.stop()


def test_one_named_daemon_thread_and_urls() -> None:
    # A daemon, stopped by an atexit hook: a script that never stops its emulator still exits
    # (tests/newcomer/test_script_exit.py).
    emu = IndexerEmulator(**FAST)  # type: ignore[arg-type]
    with emu:
        threads = emulator_threads()
        assert len(threads) == 1 and threads[0].daemon
        assert emu.ws_url.startswith("ws://127.0.0.1:") and emu.ws_url.endswith("/v4/ws")
        assert emu.rest_url.startswith("http://127.0.0.1:")
        assert isinstance(emu.network, Network) and emu.network.name == "emulator"
        assert emu.network.ws_url == emu.ws_url and emu.network.rest_url == emu.rest_url
        assert emu.port != emu.rest_port
    assert not emulator_threads()


def test_stop_leaves_no_thread_or_socket_and_is_idempotent() -> None:
    before_fds = fd_count()
    before_threads = set(threading.enumerate())
    emu = IndexerEmulator(**FAST)  # type: ignore[arg-type]
    emu.start()
    clients = [Raw(emu.ws_url) for _ in range(3)]
    for raw in clients:
        raw.connected()
        raw.send({"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD"})
    session = requests.Session()
    assert session.get(emu.rest_url + "/v4/height", timeout=5).status_code == 200
    emu.set_snapshot_delay(5.0)
    clients[0].send({"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"})  # in flight
    emu.stall(30)  # stop() must not hang on a stalled server
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 5
    emu.stop()
    assert not emulator_threads()
    for raw in clients:
        raw.close()
    session.close()
    wait_until(lambda: set(threading.enumerate()) <= before_threads)
    wait_until(lambda: fd_count() <= before_fds, timeout=10)


def test_stop_without_start_and_restart() -> None:
    emu = IndexerEmulator(**FAST)  # type: ignore[arg-type]
    emu.stop()
    emu.start()
    assert emu.connection_count() == 0
    emu.stop()
    emu.start()
    try:
        raw = Raw(emu.ws_url)
        assert raw.connected()["message_id"] == 0
        raw.close()
    finally:
        emu.stop()


def test_port_in_use_fails_cleanly() -> None:
    with IndexerEmulator(**FAST) as emu:  # type: ignore[arg-type]
        clash = IndexerEmulator(port=emu.port, **FAST)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            clash.start()
        assert len(emulator_threads()) == 1


def test_methods_need_a_running_emulator() -> None:
    emu = IndexerEmulator(**FAST)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        emu.connection_count()


def test_cli_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Drives the sub-command exactly as ``dydx-ws emulator`` does, through its own parser so the
    # test does not depend on the other sub-commands registered in dydx_ws.cli.
    script = (
        "import argparse, sys\n"
        "from dydx_ws.cli._emulator import register\n"
        "parser = argparse.ArgumentParser(prog='dydx-ws')\n"
        "register(parser.add_subparsers())\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(args.func(args))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "emulator", "--port", "0", "--block-time", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        ws_line = proc.stdout.readline()
        rest_line = proc.stdout.readline()
        assert ws_line.startswith("WebSocket: ws://127.0.0.1:")
        rest_url = rest_line.split()[-1]
        assert requests.get(rest_url + "/v4/height", timeout=5).status_code == 200
        raw = Raw(ws_line.split()[-1])
        assert raw.connected()["message_id"] == 0
        proc.send_signal(signal.SIGINT)
        assert raw.expect_close() == (1012, '{"message":"Service restarting"}')
        raw.close()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_stop_before_the_loop_is_up_is_not_lost() -> None:
    """start() timing out calls stop() before _main runs; the thread must still end."""
    gate = threading.Event()

    class GatedStart(IndexerEmulator):
        def _run(self) -> None:
            gate.wait(30)
            super()._run()

        def stop(self, timeout: float = 10.0) -> None:
            super().stop(timeout if gate.is_set() else 0.0)

    emu = GatedStart(**FAST)  # type: ignore[arg-type]
    try:
        with pytest.raises(RuntimeError):
            emu.start(timeout=0.05)
        assert len(emulator_threads()) == 1  # still waiting at the gate
        gate.set()
        wait_until(lambda: not emulator_threads(), timeout=10)
    finally:
        gate.set()
        emu.stop()


def test_a_failing_block_does_not_stop_block_production(
    make_emu: Callable[..., IndexerEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emu(block_time=0.01)
    height = emu.pause()
    original = emu.sim.step
    failures: List[float] = []

    def flaky(now: float) -> Any:
        if not failures:
            failures.append(now)
            raise RuntimeError("boom")
        return original(now)

    monkeypatch.setattr(emu.sim, "step", flaky)
    emu.resume()
    wait_until(lambda: emu.height > height + 3)
    assert failures
