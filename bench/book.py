"""Benchmark: decoding a real-shaped orderbook batch frame vs applying it to a local book.

The frame is the real 41-update ``channel_batch_data`` capture (tests/fixtures); the book starts
from a 100-levels-per-side snapshot around the same prices. Figures are per frame, the best of
several repeats (least disturbed by other processes on a shared machine).

Run: ``.venv/bin/python bench/book.py [--repeat 7] [--number 2000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dydx_ws import OrderbookMessage, decode_message  # noqa: E402
from dydx_ws.models import PriceLevel  # noqa: E402
from dydx_ws.state._orderbook import OrderBook  # noqa: E402

FRAME = ROOT / "tests/fixtures/frames/v4_orderbook__channel_batch_data__ntl-eth-41-updates.json"


def snapshot_levels() -> Dict[str, List[PriceLevel]]:
    """100 bids below 2396.5 and 100 asks from 2396.6, tick 0.1 (the frame's price range)."""
    tick = Decimal("0.1")
    bids = [PriceLevel(Decimal("2396.5") - i * tick, Decimal("1.5")) for i in range(100)]
    asks = [PriceLevel(Decimal("2396.6") + i * tick, Decimal("2.5")) for i in range(100)]
    return {"bids": bids, "asks": asks}


def best(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """Best mean seconds per call over ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=2000)
    args = ap.parse_args()

    raw = FRAME.read_text()
    frame = json.dumps(json.loads(raw), separators=(",", ":"))  # wire form: compact
    msg = decode_message(frame)
    assert isinstance(msg, OrderbookMessage)
    n_levels = len(msg.bids) + len(msg.asks)
    snap = snapshot_levels()

    book = OrderBook("ETH-USD")
    book.apply_snapshot(snap["bids"], snap["asks"], message_id=1)

    def reset() -> None:
        book.apply_snapshot(snap["bids"], snap["asks"], message_id=1)

    def apply_only() -> None:
        book.apply(msg)

    def apply_and_read() -> None:
        book.apply(msg)
        book.top()

    def apply_and_copy() -> None:
        book.apply(msg)
        book.copy()

    t_decode = best(lambda: decode_message(frame), args.repeat, args.number)
    t_json = best(lambda: json.loads(frame), args.repeat, args.number)
    t_reset = best(reset, args.repeat, args.number)
    # Re-applying the same frame: every element sets or removes a level (removing an absent level
    # is the same look-up); "fresh" below applies it to an untouched 100-level book instead.
    reset()
    t_apply = best(apply_only, args.repeat, args.number)
    reset()
    t_read = best(apply_and_read, args.repeat, args.number)
    reset()
    t_copy = best(apply_and_copy, args.repeat, args.number)
    base = book.copy()
    base.apply_snapshot(snap["bids"], snap["asks"], message_id=1)
    t_clone = best(base.copy, args.repeat, args.number)
    t_fresh = best(lambda: base.copy().apply(msg), args.repeat, args.number) - t_clone
    t_top = best(book.top, args.repeat, args.number * 10)
    t_bb = best(lambda: (book.best_bid, book.best_ask), args.repeat, args.number * 10)

    us = 1e6
    print(f"frame: {FRAME.name} ({len(frame)} bytes, {n_levels} levels in one batch)")
    print(f"book:  100 bids + 100 asks, uncross={book.uncross}, {len(book)} levels after apply")
    print()
    print(f"  json.loads(frame)                     {t_json * us:8.1f} us")
    print(f"  decode_message(frame)                 {t_decode * us:8.1f} us")
    print(f"  book.apply(msg)                       {t_apply * us:8.1f} us")
    print(f"  book.apply(msg) on the fresh book     {t_fresh * us:8.1f} us   (copy() subtracted)")
    print(f"  book.apply(msg) + top()               {t_read * us:8.1f} us")
    print(f"  book.apply(msg) + copy()              {t_copy * us:8.1f} us")
    print(f"  book.apply_snapshot(100 x 2 levels)   {t_reset * us:8.1f} us")
    print(f"  book.top()                            {t_top * us:8.3f} us")
    print(f"  book.best_bid + book.best_ask         {t_bb * us:8.3f} us")
    print()
    ratio_read = max(t_read, t_fresh) / t_decode
    ratio_copy = t_copy / t_decode
    verdict = "OK" if max(ratio_read, ratio_copy) < 3 else "OVER TARGET"
    print(f"  ratio (apply + top) / decode          {ratio_read:8.2f}x")
    print(f"  ratio (apply + copy) / decode         {ratio_copy:8.2f}x   target < 3x: {verdict}")


if __name__ == "__main__":
    main()
