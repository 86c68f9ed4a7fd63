"""Connection settings and their checks: limits, TLS verification options, the proxy URL."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from ._dial_gate import DialGate
from ._frame_reader import MIN_MAX_MESSAGE_SIZE
from ._io_baton import IoBaton
from ._reconnect import ReconnectPolicy

__all__ = [
    "DEFAULT_MAX_HANDSHAKE_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MIN_MAX_MESSAGE_SIZE",
    "ConnectionOptions",
    "check_proxy",
    "tls_options",
]

#: The largest message accepted (a frame, or a fragmented message in total). The largest real
#: snapshots (every market; a subaccount with its orders; 100-level books) are well under 1 MiB,
#: the server's own inbound limit is 100 MiB; a declared size above this fails the link at once.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_HANDSHAKE_SIZE = 64 * 1024  # the HTTP upgrade response, headers and any body


@dataclass(frozen=True)
class ConnectionOptions:
    """Transport settings (see :class:`~dydx_ws.DydxWebSocketClient` for their meaning)."""

    url: str
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    ping_interval: float = 20.0
    pong_timeout: float = 10.0
    connect_timeout: float = 10.0
    sslopt: Optional[Dict[str, Any]] = None
    proxy: Optional[str] = None
    headers: Optional[Dict[str, str]] = None
    thread_name: str = "dydx-ws-io"
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_handshake_size: int = DEFAULT_MAX_HANDSHAKE_SIZE
    fast_frames: bool = True  # False: every frame through the general parser (FrameReader)
    dial_gate: Optional[DialGate] = None  # shared by a pool's connections (_dial_gate.py)
    io_baton: Optional[IoBaton] = None  # shared by a pool's connections (_io_baton.py)


def tls_options(
    url: str, ca_bundle: Optional[str], sslopt: Optional[Dict[str, Any]]
) -> Optional[Dict[str, Any]]:
    """Certificate verification on by default; a CA bundle or explicit ``sslopt`` may be given."""
    if not url.lower().startswith("wss://"):
        return sslopt
    options: Dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    options.update(sslopt or {})
    return options


def check_proxy(proxy: Optional[str]) -> Optional[str]:
    """The proxy URL (``http://user:pw@host:port``, ``socks5://host:port``...), validated."""
    if not proxy:
        return None
    parts = urlsplit(proxy)
    if not parts.hostname or parts.scheme.lower() not in ("http", "https", "socks4", "socks5"):
        raise ValueError(f"invalid proxy URL {proxy!r}")
    return proxy
