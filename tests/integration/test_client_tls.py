"""TLS: certificates are verified by default (the official client turns verification off); an
untrusted certificate fails clearly, and the same server is accepted once its CA is given."""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import trustme
from websockets.sync.server import ServerConnection, serve

from dydx_ws import DydxWebSocketClient, ErrorEvent, ReconnectPolicy
from tests.helpers.sdk_client import sdk_threads
from tests.helpers.waiting import wait_until


def _greet(conn: ServerConnection) -> None:
    conn.send(
        json.dumps({"type": "connected", "connection_id": str(uuid.uuid4()), "message_id": 0})
    )
    for _ in conn:  # keep the connection open until the client leaves
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Tuple[str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with serve(_greet, "127.0.0.1", 0, ssl=context) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, name="tls-test-server")
        thread.start()
        try:
            yield f"wss://localhost:{port}/v4/ws", ca_file
        finally:
            server.shutdown()
            thread.join(5)


POLICY = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


def test_untrusted_certificate_fails_clearly(tls_server: Tuple[str, Path]) -> None:
    url, _ = tls_server
    errors: List[ErrorEvent] = []
    with DydxWebSocketClient(url=url, reconnect=POLICY) as client:
        client.on("error", errors.append)
        wait_until(lambda: any(e.kind == "connection" for e in errors), 10)
        assert not client.connected
        failure = next(e for e in errors if e.kind == "connection")
        assert "CERTIFICATE_VERIFY_FAILED" in failure.message
        assert isinstance(failure.exception, ssl.SSLError)
    assert sdk_threads() == []


def test_connects_when_the_ca_is_given(tls_server: Tuple[str, Path]) -> None:
    url, ca_file = tls_server
    with DydxWebSocketClient(url=url, reconnect=POLICY, ca_bundle=str(ca_file)) as client:
        assert client.wait_connected(10)
        wait_until(lambda: client.stats()["connection_id"] is not None, 5)
    with DydxWebSocketClient(url=url, reconnect=POLICY, sslopt={"ca_certs": str(ca_file)}) as c2:
        assert c2.wait_connected(10)
