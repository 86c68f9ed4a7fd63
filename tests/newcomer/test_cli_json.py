"""Frictions: ``--json`` keys are snake_case everywhere (the Python attribute names), and
``book --json --count 5`` prints five ladders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any, Iterator, List

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.user_scripts import ROOT, script_env

CAMEL = re.compile(r"^[a-z]+[A-Z]")


def _cli(args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dydx_ws.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=script_env(),
        cwd=str(ROOT),
    )


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


@pytest.mark.parametrize("channel", ["trades", "subaccounts", "markets", "candles"])
def test_watch_json_keys_are_snake_case(emu: IndexerEmulator, channel: str) -> None:
    ids = {
        "trades": ["BTC-USD"],
        "subaccounts": [f"{emu.demo_address}/0"],
        "markets": [],
        "candles": ["BTC-USD/1MIN"],
    }[channel]
    r = _cli(["watch", channel, *ids, "--json", "--count", "3", "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    messages = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(messages) == 3
    keys = {k for m in messages for k in _keys(m)}
    assert not {k for k in keys if CAMEL.match(k)}, keys
    if channel == "trades":
        assert "created_at" in keys and "is_snapshot" in keys
    if channel == "subaccounts":
        assert "free_collateral" in keys


def test_book_json_count_prints_that_many_ladders(emu: IndexerEmulator) -> None:
    r = _cli(["book", "BTC-USD", "--json", "--count", "5", "--depth", "3", "--network", emu.ws_url])
    assert r.returncode == 0, r.stderr
    ladders = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(ladders) == 5
    ids = [ladder["message_id"] for ladder in ladders]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert all(ladder["ticker"] == "BTC-USD" and not ladder["stale"] for ladder in ladders)
