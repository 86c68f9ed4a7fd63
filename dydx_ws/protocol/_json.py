"""Parsing a frame's JSON text: ``orjson`` when it is installed (``pip install dydx_ws[fast]``),
else the standard library, with identical results.

orjson parses a frame faster than ``json.loads`` (bench/README.md) and reads UTF-8 bytes
directly. Whatever orjson refuses (``NaN``/``Infinity`` literals, escaped lone surrogates, invalid
JSON or UTF-8, excessive nesting) is parsed again by the standard library, so what is accepted and
every error stay exactly those of ``json.loads``; the second parse only happens on such rare or
broken frames. One documented difference remains: orjson reads an integer literal beyond 64 bits
as a float, so such a value in an integer field is rejected (``DecodeError``) where the standard
library would accept it. The Indexer never sends one: it sends every large number as a string.
"""

from __future__ import annotations

import json
from typing import Any, Callable

__all__ = ["BACKEND", "loads", "stdlib_loads"]


def stdlib_loads(raw: Any) -> Any:
    """``json.loads`` of a ``str``, or of ``bytes``/``bytearray`` decoded strictly as UTF-8 (a
    WebSocket text frame is UTF-8, RFC 6455), never guessing another encoding."""
    return json.loads(raw if raw.__class__ is str else raw.decode())


def _orjson_loads(fast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def loads(raw: Any) -> Any:
        try:
            return fast(raw)
        except ValueError:  # orjson.JSONDecodeError: let the reference parser decide
            return stdlib_loads(raw)

    return loads


try:
    import orjson
except ImportError:  # the optional accelerator is not installed
    loads: Callable[[Any], Any] = stdlib_loads
    BACKEND = "json"
else:
    loads = _orjson_loads(orjson.loads)
    BACKEND = "orjson"
