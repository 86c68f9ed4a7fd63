"""Record a live feed, then replay it through the same client code path — a tiny backtest.

The strategy code (``MidTracker``) is an ordinary callback; live or replayed, it receives the same
typed messages, with the recorded receive times, and the client's local order book is rebuilt
exactly as it was live.

    .venv/bin/python examples/replay_backtest.py --emulator --duration 3 --file book.jsonl.gz
    dydx-ws record --out book.jsonl.gz orderbook BTC-USD --duration 60   # or record with the CLI
    .venv/bin/python examples/replay_backtest.py --file book.jsonl.gz   # ...and replay it here
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import List, Optional

from dydx_ws import DydxWebSocketClient, OrderbookMessage
from dydx_ws.replay import record, replay


class MidTracker:
    """Records the mid price after every order book frame and counts spread changes."""

    def __init__(self) -> None:
        self.mids: List[Decimal] = []
        self.spread_changes = 0
        self._last_spread: Optional[Decimal] = None

    def __call__(self, msg: OrderbookMessage) -> None:
        book = msg.book
        if book is None or book.mid is None:
            return
        self.mids.append(book.mid)
        if book.spread != self._last_spread:
            self.spread_changes += 1
            self._last_spread = book.spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="book.jsonl.gz", help="recording to write/read")
    parser.add_argument(
        "--emulator", action="store_true", help="record from a local emulator first"
    )
    parser.add_argument("--ticker", default="BTC-USD")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to record")
    parser.add_argument("--speed", type=float, default=0.0, help="replay speed (0 = max)")
    args = parser.parse_args(argv)

    if args.emulator:
        from dydx_ws.emulator import IndexerEmulator

        with IndexerEmulator(markets=[args.ticker], block_time=0.3) as emu:
            frames = record(
                emu.ws_url, [("v4_orderbook", args.ticker)], args.file, duration=args.duration
            )
        print(f"recorded {frames} frames to {args.file}")

    tracker = MidTracker()
    client = DydxWebSocketClient(url="ws://replay.invalid/v4/ws")  # never connects
    client.subscribe_orderbook(args.ticker, tracker)
    try:
        result = replay(args.file, client, speed=args.speed)
        book = client.order_book(args.ticker)  # the book as it was at the end of the recording
        print(
            f"replayed {result.frames} frames ({result.recorded_span:.1f} s recorded) "
            f"in {result.elapsed:.2f} s"
        )
        if tracker.mids:
            print(
                f"mid: first {tracker.mids[0]} last {tracker.mids[-1]} "
                f"min {min(tracker.mids)} max {max(tracker.mids)}; "
                f"spread changed {tracker.spread_changes} times; final top {book.top()}"
            )
    finally:
        client.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
