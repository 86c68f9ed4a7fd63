"""Friction: while the network cannot be reached the CLI says what is happening ("connecting to
..., connect attempt 2 failed (...)"), a handshake answered with an HTML 404 page is one line,
and ``stats()`` holds the last connection error."""

from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
from typing import Iterator

import pytest

from dydx_ws import DydxWebSocketClient, ReconnectPolicy
from tests.helpers.user_scripts import ROOT, script_env

PAGE = (
    b"<html><head><title>404</title></head><body>" + b"<p>not here</p>\n" * 40 + b"</body></html>"
)


class _NotFound(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: "
            + str(len(PAGE)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + PAGE
        )


@pytest.fixture
def not_found_url() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _NotFound)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}/v4/ws"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _watch(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dydx_ws.cli",
            "watch",
            "trades",
            "BTC-USD",
            "--network",
            url,
            "--connect-timeout",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=script_env(),
        cwd=str(ROOT),
    )


def test_the_cli_reports_each_failed_attempt_while_connecting() -> None:
    url = f"ws://127.0.0.1:{_closed_port()}/v4/ws"
    r = _watch(url)
    assert r.returncode == 3, r.stderr
    lines = r.stderr.splitlines()
    attempts = [line for line in lines if line.startswith(f"connecting to {url}: connect attempt")]
    assert len(attempts) >= 2, r.stderr
    assert "Connection refused" in attempts[0] or "ConnectionRefusedError" in attempts[0]
    assert lines[-1].startswith("dydx-ws watch: error: cannot connect to"), r.stderr


def test_an_html_404_handshake_is_one_line(not_found_url: str) -> None:
    r = _watch(not_found_url)
    assert r.returncode == 3, r.stderr
    assert "<html>" not in r.stderr and "not here" not in r.stderr, r.stderr
    assert "the handshake was answered with HTTP 404" in r.stderr.splitlines()[-1], r.stderr


def test_stats_hold_the_last_connection_error(not_found_url: str) -> None:
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.1)
    with DydxWebSocketClient(url=not_found_url, reconnect=policy, check_interval=None) as client:
        assert client.stats()["last_connection_error"] is None
        assert not client.wait_connected(1.0)
        last = client.stats()["last_connection_error"]
    assert last is not None and "HTTP 404" in last and "<html>" not in last
