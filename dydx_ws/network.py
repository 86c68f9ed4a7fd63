"""Where the Indexer lives: a :class:`Network` pairs a WebSocket URL with a REST base URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Network:
    """An Indexer deployment.

    ``rest_url`` is the host base *without* ``/v4`` (e.g. ``https://indexer.dydx.trade``); the REST
    client adds ``/v4/...`` itself, and a trailing ``/v4`` given here is tolerated and stripped.
    """

    name: str
    ws_url: str
    rest_url: str

    MAINNET: ClassVar[Network]
    TESTNET: ClassVar[Network]
    LOCAL: ClassVar[Network]

    def __post_init__(self) -> None:
        rest = self.rest_url.rstrip("/")
        if rest.endswith("/v4"):
            rest = rest[: -len("/v4")]
        object.__setattr__(self, "rest_url", rest)

    @classmethod
    def custom(cls, ws_url: str, rest_url: str = "", name: str = "custom") -> Network:
        """A network from URLs (``rest_url`` may be empty when only the WebSocket is used)."""
        return cls(name=name, ws_url=ws_url, rest_url=rest_url)

    @classmethod
    def from_name(cls, name: str) -> Network:
        """``mainnet``, ``testnet`` or ``local`` (case-insensitive); a ``ws://``/``wss://`` URL
        gives a custom network whose REST base is derived from the same host."""
        key = name.strip().lower()
        presets = {"mainnet": cls.MAINNET, "testnet": cls.TESTNET, "local": cls.LOCAL}
        if key in presets:
            return presets[key]
        if key.startswith(("ws://", "wss://")):
            scheme, rest = name.split("://", 1)
            host = rest.split("/", 1)[0]
            http = "https" if scheme.lower() == "wss" else "http"
            return cls.custom(name, f"{http}://{host}")
        raise ValueError(f"unknown network {name!r}: use mainnet, testnet, local or a ws(s):// URL")


Network.MAINNET = Network("mainnet", "wss://indexer.dydx.trade/v4/ws", "https://indexer.dydx.trade")
Network.TESTNET = Network(
    "testnet",
    "wss://indexer.v4testnet.dydx.exchange/v4/ws",
    "https://indexer.v4testnet.dydx.exchange",
)
Network.LOCAL = Network("local", "ws://localhost:3003", "http://localhost:3002")
