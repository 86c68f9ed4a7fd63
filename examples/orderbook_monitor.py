"""Order book monitor: mid price and spread of one or more markets, printed once a second.

Reads the client's local order book (kept from the v4_orderbook stream) from the main thread;
no callback is needed for that.

    .venv/bin/python examples/orderbook_monitor.py --emulator --duration 5
    .venv/bin/python examples/orderbook_monitor.py BTC-USD ETH-USD
"""

from __future__ import annotations

import argparse
import contextlib
import time
from decimal import Decimal

from dydx_ws import DydxWebSocketClient, Network


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tickers", nargs="*", default=["BTC-USD", "ETH-USD"])
    parser.add_argument("--emulator", action="store_true", help="use a local emulator (offline)")
    parser.add_argument("--network", default="mainnet", help="mainnet, testnet or a ws:// URL")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.emulator:
            from dydx_ws.emulator import IndexerEmulator

            network = stack.enter_context(IndexerEmulator(markets=args.tickers)).network
        else:
            network = Network.from_name(args.network)
        client = stack.enter_context(DydxWebSocketClient(network=network))
        subs = [client.subscribe_orderbook(t) for t in args.tickers]  # no callback: state only
        for sub in subs:
            sub.wait_subscribed(timeout=15)

        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            parts = []
            for ticker in args.tickers:
                book = client.order_book(ticker)
                mid, spread = book.mid, book.spread
                if mid is None or spread is None:
                    parts.append(f"{ticker}: (waiting for the snapshot)")
                    continue
                bps = spread / mid * Decimal(10_000)
                stale = " STALE" if book.stale else ""
                parts.append(f"{ticker}: mid {mid:f} spread {spread:f} ({bps:.2f} bps){stale}")
            print(time.strftime("%H:%M:%S"), " | ".join(parts), flush=True)
            time.sleep(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
