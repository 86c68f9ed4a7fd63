"""Legacy integration: callbacks feed a plain ``queue.Queue``; a synchronous loop consumes it.

Useful when existing code is a single-threaded loop (a strategy, a GUI timer, a batch job):
the SDK's threads only put messages on the queue, and all your logic stays on one thread.

    .venv/bin/python examples/legacy_queue.py --emulator --duration 5
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import time

from dydx_ws import (
    BlockHeightMessage,
    DydxWebSocketClient,
    Message,
    Network,
    TradesMessage,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", action="store_true", help="use a local emulator (offline)")
    parser.add_argument("--network", default="mainnet", help="mainnet, testnet or a ws:// URL")
    parser.add_argument("--ticker", default="BTC-USD")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    args = parser.parse_args(argv)

    inbox: queue.Queue[Message] = queue.Queue(maxsize=10_000)

    def enqueue(msg: Message) -> None:
        # Runs on an SDK worker thread: do nothing but hand the message over. If the loop below
        # falls behind, put() blocks this worker, the client's bounded queue fills, and the
        # overflow policy (counted and reported in client.stats()) takes over.
        inbox.put(msg)

    with contextlib.ExitStack() as stack:
        if args.emulator:
            from dydx_ws.emulator import IndexerEmulator

            network = stack.enter_context(IndexerEmulator(markets=[args.ticker])).network
        else:
            network = Network.from_name(args.network)
        client = stack.enter_context(DydxWebSocketClient(network=network))
        client.subscribe_trades(args.ticker, enqueue)
        client.subscribe_block_height(enqueue)

        # The synchronous loop: your existing code, on the main thread.
        volume = 0.0
        trades = blocks = 0
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            try:
                msg = inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(msg, TradesMessage) and not msg.is_snapshot:
                trades += len(msg.trades)
                volume += sum(float(t.size) for t in msg.trades)
            elif isinstance(msg, BlockHeightMessage):
                blocks += 1
                print(f"block {msg.height}: {trades} trades, volume {volume:.4f} so far")
        print(f"done: {trades} trades, {blocks} blocks, {inbox.qsize()} message(s) left unread")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
