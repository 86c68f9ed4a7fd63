"""JavaScript-semantics helpers (truthiness, ``String()``, ``Number()``) and wire formatting.

socks is a Node service: its error texts interpolate values with template literals and its
validation relies on JS truthiness and ``Number()``.  These helpers reproduce that in Python, plus
compact ``JSON.stringify``-style encoding, Big.js-style decimal strings and ISO timestamps.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

UNDEFINED: Any = object()
"""Stands for a JS ``undefined`` (a missing key)."""


def dumps(value: Any) -> str:
    """Compact JSON like ``JSON.stringify`` (no spaces, non-ASCII kept); dict order is preserved."""
    return _ENCODER.encode(value)


def truthy(value: Any) -> bool:
    """JS truthiness of a JSON-decoded value (``[]`` and ``{}`` are truthy in JS)."""
    if value is UNDEFINED or value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _number_to_string(value: float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        return f"{mantissa}e{sign}{int(exp.lstrip('+-'))}"
    return text


def js_string(value: Any) -> str:
    """``String(value)`` / template-literal interpolation of a JSON-decoded value."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_to_string(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if v is None or v is UNDEFINED else js_string(v) for v in value)
    return "[object Object]"


_JS_RADIX = {"0x": "0123456789abcdef", "0o": "01234567", "0b": "01"}
_JS_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def js_number(text: str) -> float:
    """``Number(text)`` for a string: trims whitespace, ``""`` is 0, hex/octal/binary prefixes."""
    s = text.strip(" \t\n\r\v\f\u00a0\ufeff")
    if s == "":
        return 0.0
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    low = s.lower()
    for prefix, digits in _JS_RADIX.items():
        if low.startswith(prefix):
            # int() would also accept "_" separators and signs, which Number() does not
            if not re.fullmatch(f"[{digits}]+", low[2:]):
                return math.nan
            return float(int(low[2:], len(digits)))
    if _JS_NUMBER.match(s):
        return float(s)
    return math.nan


def dec_str(value: Decimal) -> str:
    """A decimal as Big.js ``toFixed()`` prints it: plain digits, no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def scaled(units: int, exponent: int) -> str:
    """``units * 10**exponent`` as a plain decimal string: ``scaled(12345, -2) == "123.45"``."""
    return dec_str(Decimal(units).scaleb(exponent))


def iso(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds and ``Z`` (JS ``toISOString``)."""
    ms = round(ts * 1000)
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive means UTC) into epoch seconds."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
