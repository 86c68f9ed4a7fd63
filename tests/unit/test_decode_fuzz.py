"""Mutation fuzzing of the decoder: real frames with fields deleted, retyped or corrupted, and
truncated or pathological texts, must decode or raise ``DecodeError`` — never anything else."""

from __future__ import annotations

import contextlib
import copy
import json
import random
from typing import Any, Iterator, List

from dydx_ws import DecodeError, decode_message
from tests.helpers.fixture_corpus import frame_text, manifest

ODD_VALUES: List[Any] = [None, 0, -1, 1.5, True, "", "x", "NaN", "1e999", [], {}, [[]], {"a": 1}]


def _paths(obj: Any, path: tuple = ()) -> Iterator[tuple]:  # type: ignore[type-arg]
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, (*path, i))


def _mutate(frame: Any, rng: random.Random) -> Any:
    out = copy.deepcopy(frame)
    paths = [p for p in _paths(out) if p]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        parent = out
        try:
            for step in path[:-1]:
                parent = parent[step]
            if rng.random() < 0.3 and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        except (KeyError, IndexError, TypeError):
            continue
    return out


def _check(raw: Any) -> None:
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_message(raw)


def test_mutated_real_frames_raise_only_decode_error() -> None:
    rng = random.Random(20261121)
    frames = [json.loads(frame_text(e)) for e in manifest("frame")]
    for frame in frames:
        for _ in range(40):
            mutated = _mutate(frame, rng)
            _check(mutated)
            _check(json.dumps(mutated))


def test_truncated_and_pathological_texts_raise_only_decode_error() -> None:
    rng = random.Random(7)
    texts = [frame_text(e) for e in manifest("frame")]
    for text in texts:
        for _ in range(10):
            cut = text[: rng.randrange(len(text))]
            _check(cut)
            _check(cut.encode())
    for raw in ("[" * 100_000, '{"a":' * 100_000, "\ud800", b"\xff" * 10, "{}" * 3, "1" * 5000):
        _check(raw)
