"""Fixtures for sink tests: a real Redis server on a loopback port, the emulator's helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
