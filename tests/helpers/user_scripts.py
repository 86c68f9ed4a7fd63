"""Helpers for "a newcomer's first hour": user-style scripts run as subprocesses with hard
timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]


def script_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def write_script(tmp_path: Path, body: str, name: str = "user_script.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run_script(
    path: Path, args: Optional[List[str]] = None, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(path), *(args or [])],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=script_env(),
        cwd=str(path.parent),
    )
