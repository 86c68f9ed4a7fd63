"""Bug 1: a callback that raises is visible by default (a traceback on stderr through Python's
handler of last resort, rate-limited) and quiet once ``on("error")`` handles it; the README's
logging tip prints debug records as written."""

from __future__ import annotations

from pathlib import Path

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.user_scripts import run_script, write_script

RAISING = """
    import sys, threading
    from dydx_ws import DydxWebSocketClient
    calls = []
    enough = threading.Event()
    def on_height(msg):
        calls.append(msg)
        if len(calls) >= 20:
            enough.set()
        1 / 0
    with DydxWebSocketClient(url=sys.argv[1], check_interval=None) as client:
        {listener}
        client.subscribe_block_height(on_height)
        assert enough.wait(30), "not enough messages"
        client.drain(10)
    print("callback errors", client.stats()["callback_errors"])
"""


def test_an_unhandled_callback_error_prints_one_traceback_on_stderr(
    tmp_path: Path, emu: IndexerEmulator
) -> None:
    script = write_script(tmp_path, RAISING.format(listener="pass"))
    r = run_script(script, [emu.ws_url])
    assert r.returncode == 0, r.stderr
    errors = int(r.stdout.split("callback errors")[1])
    assert errors >= 20
    assert "ZeroDivisionError: division by zero" in r.stderr
    assert "on_height" in r.stderr and "client.on('error'" in r.stderr
    # rate-limited: 20+ errors within seconds give one traceback, not 20
    assert r.stderr.count("Traceback (most recent call last)") == 1, r.stderr


def test_a_handled_callback_error_is_quiet(tmp_path: Path, emu: IndexerEmulator) -> None:
    listener = "client.on('error', lambda e: None)"
    script = write_script(tmp_path, RAISING.format(listener=listener))
    r = run_script(script, [emu.ws_url])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "ZeroDivisionError" not in r.stderr


def test_the_readme_logging_tip_prints_debug_records(tmp_path: Path, emu: IndexerEmulator) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    tip = readme.split("**Logging:**", 1)[1].split("`", 2)[1]
    script = write_script(
        tmp_path,
        f"""
        import logging, sys
        from dydx_ws import DydxWebSocketClient
        {tip}
        with DydxWebSocketClient(url=sys.argv[1], check_interval=None) as client:
            client.subscribe_block_height().wait_subscribed(20)
        """,
    )
    r = run_script(script, [emu.ws_url])
    assert r.returncode == 0, r.stderr
    assert f"dydx_ws.client:connecting to {emu.ws_url}" in r.stderr, r.stderr
