"""The JSON backend: orjson (the ``fast`` extra, part of ``dev``) must give exactly what the
standard library gives — the same values, the same accepted inputs, the same errors — on the
whole corpus and on the inputs where the two parsers differ by design."""

from __future__ import annotations

import json
from typing import Any, Callable, Tuple

import orjson
import pytest

from dydx_ws import DecodeError, decode_message
from dydx_ws.protocol import _json as json_backend
from tests.helpers.fixture_corpus import manifest, raw_bytes

RAW_INPUTS = [raw_bytes(e) for e in manifest("frame") + manifest("malformed")]

# Inputs orjson refuses (or reads differently) but json.loads accepts, or vice versa.
EDGE_CASES = [
    b'{"type":"connected","message_id":NaN}',
    b'{"type":"connected","message_id":-Infinity}',
    b'{"type":"connected","message_id":1e999}',
    b'{"type":"connected","connection_id":"\\ud800"}',  # an escaped lone surrogate
    b'{"type":"connected","connection_id":"a","connection_id":"b"}',  # duplicate key
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b'{"type":"connected","connection_id":"\xff"}',  # invalid UTF-8
    b"[" * 5000 + b"]" * 5000,  # deeper than either parser allows
    b'{"type":"connected"} trailing',
    b"",
    b" \n{}\t",
]


def _outcome(parse: Callable[[Any], Any], raw: Any) -> Tuple[str, Any]:
    try:
        return "ok", parse(raw)
    except RecursionError:
        return "error", "RecursionError"
    except ValueError as exc:
        return "error", type(exc).__name__


def _same(a: Any, b: Any) -> bool:
    """Equal values, NaN included (NaN != NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_the_accelerator_is_used_when_installed() -> None:
    assert json_backend.BACKEND == "orjson"
    frame = b'{"type":"connected","connection_id":"c","message_id":0}'
    assert json_backend.loads(frame) == orjson.loads(frame)


@pytest.mark.parametrize("raw", RAW_INPUTS + EDGE_CASES)
def test_orjson_backend_parses_exactly_as_the_standard_library(raw: bytes) -> None:
    fast = _outcome(json_backend.loads, raw)
    reference = _outcome(json_backend.stdlib_loads, raw)
    assert fast[0] == reference[0]
    if fast[0] == "ok":
        assert _same(fast[1], reference[1])
    else:
        assert fast[1] == reference[1]
    if isinstance(raw, bytes):  # str input takes the same path
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return
        assert _outcome(json_backend.loads, text)[0] == fast[0]


@pytest.mark.parametrize("raw", RAW_INPUTS + EDGE_CASES)
def test_decoding_is_the_same_with_either_backend(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def decode(raw: bytes) -> Any:
        try:
            return decode_message(raw, received_at=0.0)
        except DecodeError as exc:
            return ("DecodeError", str(exc))

    fast = decode(raw)
    monkeypatch.setattr(json_backend, "loads", json_backend.stdlib_loads)
    assert decode(raw) == fast


def test_an_integer_beyond_64_bits_is_the_one_documented_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = 123456789012345678901234567890
    raw = b'{"type":"connected","connection_id":"c","message_id":%d}' % big
    with pytest.raises(DecodeError, match="message_id must be int, got float"):
        decode_message(raw, received_at=0.0)  # orjson reads it as a float
    monkeypatch.setattr(json_backend, "loads", json_backend.stdlib_loads)
    assert decode_message(raw, received_at=0.0).message_id == big
