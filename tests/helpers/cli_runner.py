"""Running ``dydx-ws`` (``python -m dydx_ws.cli``) as a subprocess from the repository root, with
the repository on ``PYTHONPATH``, bounded by a hard timeout; :func:`run_in_pty` runs it on a
pseudo-terminal (the rich views)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

DYDX_WS = [sys.executable, "-m", "dydx_ws.cli"]
ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: List[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DYDX_WS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=str(ROOT),
    )


def run_in_pty(
    args: List[str], timeout: float = 40.0, *, lines: int = 60, columns: int = 140
) -> Tuple[int, str]:
    """Run ``dydx-ws args`` on a pseudo-terminal of ``lines`` x ``columns``; (exit code, all
    it wrote, escape sequences included)."""
    master, slave = pty.openpty()
    env = cli_env()
    env.update({"TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)})
    proc = subprocess.Popen(
        [*DYDX_WS, *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(ROOT)
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, b"".join(chunks).decode("utf-8", "replace")
