"""Decode cost of ``decode_message`` relative to ``json.loads`` and to dataclasses-json.

Run: ``python bench/decode.py`` (add ``--quick`` for a short run). For three real-shaped frames
(compact JSON, as the server sends them) it prints µs per frame for ``json.loads``,
``decode_message`` (json.loads + generated decoders + envelope) and the same frame decoded the
plain dataclasses-json way (``from_dict`` for the message and every model in it,
``dydx_ws.protocol._decode.reference_decode``), with the ratios measured side by side in one run.
``decode`` uses the installed JSON backend (orjson with the ``fast`` extra); ``decode[json]`` is
the same with the standard library's parser, as without the extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path
from typing import Callable, Dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dydx_ws import decode_message  # noqa: E402
from dydx_ws.protocol import _json as json_backend  # noqa: E402
from dydx_ws.protocol._decode import reference_decode  # noqa: E402

FRAMES_DIR = ROOT / "tests" / "fixtures" / "frames"


def _compact(name: str) -> Dict[str, object]:
    return json.loads((FRAMES_DIR / name).read_text())


def frames() -> Dict[str, str]:
    book = _compact("v4_orderbook__channel_data__ntl-btc-level-delete.json")
    trades = _compact("v4_trades__channel_data__ntl-eth-limit.json")
    got = trades["contents"]["trades"]  # type: ignore[index]
    trades["contents"] = {"trades": (got * 5)[:5]}
    account = _compact("v4_subaccounts__channel_data__ntl-fills-orders-positions.json")
    out = {}
    for label, frame in (
        ("order book update", book),
        ("5-trade frame", trades),
        ("subaccount update", account),
    ):
        text = json.dumps(frame, separators=(",", ":"))
        out[f"{label} ({len(text)} B)"] = text
    return out


def best_of(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best per-call time in µs over ``repeat`` runs (the least disturbed by a noisy machine)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def decode_with_stdlib_json(text: str) -> object:
    installed = json_backend.loads
    json_backend.loads = json_backend.stdlib_loads
    try:
        return decode_message(text)
    finally:
        json_backend.loads = installed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer calls per figure")
    args = parser.parse_args()
    n_fast, n_slow = (2_000, 200) if args.quick else (20_000, 2_000)
    print(f"JSON backend: {json_backend.BACKEND}")
    print(
        f"{'frame':32} {'json.loads':>11} {'decode':>9} {'decode[json]':>13} {'from_dict':>10} "
        f"{'decode/loads':>13} {'[json]/loads':>13} {'from_dict/decode':>17}"
    )
    for label, text in frames().items():
        loads = best_of(lambda t=text: json.loads(t), n_fast)
        fast = best_of(lambda t=text: decode_message(t), n_fast)
        std = best_of(lambda t=text: decode_with_stdlib_json(t), n_fast)
        slow = best_of(lambda t=text: reference_decode(t), n_slow)
        print(
            f"{label:32} {loads:9.2f}µs {fast:7.2f}µs {std:11.2f}µs {slow:8.1f}µs "
            f"{fast / loads:12.2f}x {std / loads:12.2f}x {slow / fast:16.1f}x"
        )
    print(
        "targets: decode/loads <= 2.5x for the book update and trade frame; "
        "from_dict/decode >= 40x on all three"
    )


if __name__ == "__main__":
    main()
