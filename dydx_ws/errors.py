"""Exception hierarchy: every error the SDK raises on purpose derives from :class:`DydxWsError`."""

from __future__ import annotations

from typing import Optional


class DydxWsError(Exception):
    """Base class of every error raised by ``dydx_ws``."""


class DecodeError(DydxWsError, ValueError):
    """A frame could not be decoded; the message names the channel, type and offending field."""

    def __init__(
        self,
        reason: str,
        *,
        channel: Optional[str] = None,
        type: Optional[str] = None,
        field: Optional[str] = None,
        raw: object = None,
    ) -> None:
        parts = [reason]
        where = ", ".join(
            f"{k}={v!r}" for k, v in (("channel", channel), ("type", type), ("field", field)) if v
        )
        if where:
            parts.append(f"({where})")
        super().__init__(" ".join(parts))
        self.reason = reason
        self.channel = channel
        self.type = type
        self.field = field
        self.raw = raw


class SubscriptionError(DydxWsError):
    """The server refused or failed a subscription; ``server_message`` is the server's own text."""

    def __init__(
        self, server_message: str, *, channel: Optional[str] = None, id: Optional[str] = None
    ) -> None:
        target = f"{channel}/{id}" if id else (channel or "?")
        super().__init__(f"subscription {target} failed: {server_message}")
        self.server_message = server_message
        self.channel = channel
        self.id = id


class DydxConnectionError(DydxWsError):
    """The connection could not be established or was lost for good (e.g. max attempts reached)."""


class RestError(DydxWsError):
    """An Indexer HTTP request failed; ``status`` and the server's ``msg`` are kept."""

    def __init__(self, status: int, msg: str, *, url: str = "") -> None:
        super().__init__(f"HTTP {status} from {url}: {msg}" if url else f"HTTP {status}: {msg}")
        self.status = status
        self.msg = msg
        self.url = url
