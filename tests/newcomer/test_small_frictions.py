"""Frictions of a first hour: network names as strings, ``dydx-ws --version``, every failed REST
request is a ``RestError``, a LICENSE file, README links that work on the package index page,
example commands that match the Quickstart."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

import dydx_ws
from dydx_ws import DydxWebSocketClient, IndexerRestClient, Network, RestError
from dydx_ws.rest import RestConnectionError
from tests.helpers.user_scripts import ROOT, script_env


def test_network_names_are_accepted_as_strings() -> None:
    for name, network in (("mainnet", Network.MAINNET), ("Testnet", Network.TESTNET)):
        client = DydxWebSocketClient(network=name, check_interval=None)
        assert client.network == network
        client.stop()
        rest = IndexerRestClient(name)
        assert rest.base_url == network.rest_url
        rest.close()
    with pytest.raises(ValueError, match="unknown network 'mainet'"):
        DydxWebSocketClient(network="mainet")


def test_dydx_ws_version() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "dydx_ws.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=script_env(),
        cwd=str(ROOT),
    )
    assert r.returncode == 0
    assert r.stdout.strip() == f"dydx-ws {dydx_ws.__version__}"


def test_a_refused_rest_connection_is_a_rest_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rest = IndexerRestClient(f"http://127.0.0.1:{port}", retries=0, timeout=2)
    try:
        with pytest.raises(RestError) as info:
            rest.get_height()
    finally:
        rest.close()
    assert isinstance(info.value, RestConnectionError) and info.value.status == 0
    assert str(port) in str(info.value)


def test_license_file_matches_the_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "dydx_ws contributors" in text
    assert "license = MIT" in (ROOT / "setup.cfg").read_text()


def test_readme_links_are_absolute() -> None:
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert links
    assert all(link.startswith("https://") for link in links), links


def test_example_commands_match_the_quickstart() -> None:
    for path in (ROOT / "examples").glob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\bpython3? examples/", line):
                assert ".venv/bin/python examples/" in line, (path.name, line)
