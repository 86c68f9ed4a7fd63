"""Bug 2: a script that ends without ``with``/``stop()`` exits (at its end, after an exception,
on Ctrl-C), and the clients still running are stopped cleanly at exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.user_scripts import run_script, script_env, write_script

STARTED = textwrap.dedent(
    """
    import sys, time
    from dydx_ws import DydxWebSocketClient
    client = DydxWebSocketClient(url=sys.argv[1], check_interval=None)
    client.start()
    sub = client.subscribe_block_height(lambda m: None)
    assert sub.wait_subscribed(20)
    print("subscribed", flush=True)
    """
)


def test_a_script_that_never_stops_its_client_exits_at_its_end(
    tmp_path: Path, emu: IndexerEmulator
) -> None:
    script = write_script(tmp_path, STARTED + "print('end of script')\n")
    started = time.monotonic()
    r = run_script(script, [emu.ws_url], timeout=30)
    assert r.returncode == 0, r.stderr
    assert "end of script" in r.stdout
    assert time.monotonic() - started < 20
    assert "Traceback" not in r.stderr


def test_clients_still_running_at_exit_are_stopped_cleanly(
    tmp_path: Path, emu: IndexerEmulator
) -> None:
    # An atexit function registered before dydx_ws is imported runs after the SDK's own.
    script = write_script(
        tmp_path,
        textwrap.dedent(
            """
        import atexit, threading
        def report():
            sdk = [t.name for t in threading.enumerate() if t.name.startswith("dydx-ws")]
            print("at exit:", client.state, "threads:", sdk)
        atexit.register(report)
        """
        )
        + STARTED,
    )
    r = run_script(script, [emu.ws_url], timeout=30)
    assert r.returncode == 0, r.stderr
    assert "at exit: stopped threads: []" in r.stdout, r.stdout


def test_a_script_that_raises_exits_with_its_own_traceback(
    tmp_path: Path, emu: IndexerEmulator
) -> None:
    script = write_script(tmp_path, STARTED + "raise RuntimeError('user bug')\n")
    r = run_script(script, [emu.ws_url], timeout=30)
    assert r.returncode == 1
    assert "RuntimeError: user bug" in r.stderr
    assert r.stderr.count("Traceback") == 1, r.stderr


def _start_sleeping_script(tmp_path: Path, emu: IndexerEmulator) -> subprocess.Popen:
    script = write_script(tmp_path, STARTED + "time.sleep(600)\n")
    proc = subprocess.Popen(
        [sys.executable, str(script), emu.ws_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=script_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded by the script's own wait_subscribed(20)
    assert line.strip() == "subscribed", proc.stderr.read() if proc.stderr else ""
    return proc


def test_ctrl_c_stops_a_script_at_once(tmp_path: Path, emu: IndexerEmulator) -> None:
    proc = _start_sleeping_script(tmp_path, emu)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=15)
    assert time.monotonic() - started < 5, "Ctrl-C took too long"
    assert proc.returncode == -signal.SIGINT  # an uncaught KeyboardInterrupt, as Python does
    assert "KeyboardInterrupt" in err
    assert "threading" not in err and "_shutdown" not in err, err


def test_a_second_ctrl_c_prints_no_threading_traceback(
    tmp_path: Path, emu: IndexerEmulator
) -> None:
    proc = _start_sleeping_script(tmp_path, emu)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)  # the second Ctrl-C of an impatient user, while the script exits
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode != 0
    assert "_shutdown" not in err and "threading.py" not in err, err


def test_a_script_that_never_stops_its_emulator_exits(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        textwrap.dedent(
            """
            import atexit, threading
            def report():
                alive = [t.name for t in threading.enumerate() if t.name == "dydx-emulator"]
                print("emulator threads at exit:", alive)
            atexit.register(report)  # registered first: runs after the emulator's own hook
            from dydx_ws.emulator import IndexerEmulator
            emu = IndexerEmulator(markets=["BTC-USD"], port=0).start()
            print("serving", emu.ws_url, flush=True)
            """
        ),
    )
    started = time.monotonic()
    r = run_script(script, [], timeout=30)
    assert r.returncode == 0, r.stderr
    assert "serving ws://127.0.0.1:" in r.stdout
    assert "emulator threads at exit: []" in r.stdout, r.stdout
    assert time.monotonic() - started < 20
    assert "Traceback" not in r.stderr
