"""Quickstart: print live BTC-USD trades and the best bid/ask for a few seconds.

.venv/bin/python examples/quickstart.py --emulator          # offline, against a local emulator
.venv/bin/python examples/quickstart.py                      # dYdX mainnet
"""

from __future__ import annotations

import argparse
import contextlib
import time

from dydx_ws import DydxWebSocketClient, Network, OrderbookMessage, TradesMessage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", action="store_true", help="use a local emulator (offline)")
    parser.add_argument("--network", default="mainnet", help="mainnet, testnet or a ws:// URL")
    parser.add_argument("--ticker", default="BTC-USD")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.emulator:
            from dydx_ws.emulator import IndexerEmulator

            network = stack.enter_context(IndexerEmulator(markets=[args.ticker])).network
        else:
            network = Network.from_name(args.network)

        # 1. Create a client. Nothing happens until start(); subscribing first is fine.
        client = stack.enter_context(DydxWebSocketClient(network=network))  # starts, and stops

        # 2. Callbacks run on a worker thread, one typed message per wire frame.
        def on_trades(msg: TradesMessage) -> None:
            for trade in msg.trades[:3]:
                print(f"trade  {trade.side.value:<4} {trade.size} @ {trade.price}")

        def on_book(msg: OrderbookMessage) -> None:
            bid, ask = msg.book.top()  # the local book after this frame
            if msg.is_snapshot and bid and ask:
                print(f"book   best bid {bid.price}  best ask {ask.price}")

        client.subscribe_trades(args.ticker, on_trades)
        client.subscribe_orderbook(args.ticker, on_book)

        if not client.wait_connected(timeout=10):
            print("could not connect")
            return 3
        time.sleep(args.duration)  # the work happens on the client's threads

        # 3. Local state is there to read at any time, from any thread.
        book = client.order_book(args.ticker)
        print(f"after {args.duration:g} s: mid {book.mid}  spread {book.spread}")
        print("messages per channel:", client.stats()["messages_per_channel"])
    return 0  # leaving the with-block stopped the client and joined its threads


if __name__ == "__main__":
    raise SystemExit(main())
