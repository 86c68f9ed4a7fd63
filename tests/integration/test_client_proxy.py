"""Proxies are passed through to websocket-client: the connection really goes through an HTTP
CONNECT proxy (a small one written here), credentials included."""

from __future__ import annotations

import base64
import contextlib
import selectors
import socket
import threading
from typing import Iterator, List, Optional, Tuple

import pytest

from dydx_ws import DydxWebSocketClient
from dydx_ws.emulator import IndexerEmulator
from tests.helpers.sdk_client import FAST_EMULATOR, make_client, sdk_threads


class ConnectProxy:
    """A threaded HTTP CONNECT proxy on 127.0.0.1 that records the requests it tunnels."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.requests: List[Tuple[str, Optional[str]]] = []
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._accept = threading.Thread(target=self._run, name="test-proxy")

    def __enter__(self) -> ConnectProxy:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join(5)
        for t in self._threads:
            t.join(5)
        self.listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            t = threading.Thread(target=self._tunnel, args=(conn,), name="test-proxy-tunnel")
            self._threads.append(t)
            t.start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            auth = next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in lines[1:]
                    if ln.lower().startswith("proxy-authorization")
                ),
                None,
            )
            self.requests.append((f"{method} {target}", auth))
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                sel = selectors.DefaultSelector()
                sel.register(client, selectors.EVENT_READ, upstream)
                sel.register(upstream, selectors.EVENT_READ, client)
                with contextlib.suppress(OSError):
                    while not self._stop.is_set():
                        for key, _ in sel.select(0.2):
                            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                            if not data:
                                return
                            key.data.sendall(data)
                sel.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as p:
        yield p


def test_connects_through_an_http_proxy_with_credentials(proxy: ConnectProxy) -> None:
    with IndexerEmulator(markets=["BTC-USD"], seed=4, **FAST_EMULATOR) as emu:
        url = f"http://alice:s3cret@127.0.0.1:{proxy.port}"
        with make_client(emu, proxy=url) as client:
            assert client.subscribe_block_height().wait_subscribed(10)
        assert proxy.requests, "the client bypassed the proxy"
        request, auth = proxy.requests[0]
        assert request == f"CONNECT 127.0.0.1:{emu.port}"
        assert auth == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert sdk_threads() == []


def test_an_invalid_proxy_url_is_rejected_before_connecting() -> None:
    with pytest.raises(ValueError, match="invalid proxy URL"):
        DydxWebSocketClient(url="ws://127.0.0.1:1", proxy="http://:8080")
