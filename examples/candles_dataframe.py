"""Candles into a pandas DataFrame, saved as a PNG chart.

The ``v4_candles`` snapshot brings recent history; updates re-send the current candle as it
changes, so candles are keyed by their start time (the latest version wins).
Needs ``pip install pandas matplotlib``.

    .venv/bin/python examples/candles_dataframe.py --emulator --duration 3 --out candles.png
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from datetime import datetime
from typing import Dict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt
import pandas as pd

from dydx_ws import CandleResolution, CandlesMessage, DydxWebSocketClient, Network
from dydx_ws.models import Candle


def to_frame(candles: Dict[datetime, Candle]) -> pd.DataFrame:
    rows = [
        {
            "started_at": c.started_at,
            "open": float(c.open),
            "high": float(c.high),
            "low": float(c.low),
            "close": float(c.close),
            "volume": float(c.base_token_volume),
            "trades": c.trades,
        }
        for c in candles.values()
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.set_index("started_at").sort_index()


def save_chart(frame: pd.DataFrame, ticker: str, path: str) -> None:
    fig, (price, volume) = plt.subplots(
        2, 1, sharex=True, figsize=(9, 5), gridspec_kw={"height_ratios": [3, 1]}
    )
    price.vlines(frame.index, frame["low"], frame["high"], color="grey", linewidth=1)
    up = frame["close"] >= frame["open"]
    price.vlines(frame.index[up], frame["open"][up], frame["close"][up], color="green", linewidth=4)
    price.vlines(
        frame.index[~up], frame["open"][~up], frame["close"][~up], color="red", linewidth=4
    )
    price.set_title(f"{ticker} 1-minute candles")
    volume.bar(frame.index, frame["volume"], width=0.0005)
    volume.set_ylabel("volume")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", action="store_true", help="use a local emulator (offline)")
    parser.add_argument("--network", default="mainnet", help="mainnet, testnet or a ws:// URL")
    parser.add_argument("--ticker", default="BTC-USD")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to collect")
    parser.add_argument("--out", default="candles.png", help="PNG file to write")
    args = parser.parse_args(argv)

    candles: Dict[datetime, Candle] = {}
    lock = threading.Lock()

    def on_candles(msg: CandlesMessage) -> None:
        with lock:
            for candle in msg.candles:
                candles[candle.started_at] = candle

    with contextlib.ExitStack() as stack:
        if args.emulator:
            from dydx_ws.emulator import IndexerEmulator

            network = stack.enter_context(IndexerEmulator(markets=[args.ticker])).network
        else:
            network = Network.from_name(args.network)
        client = stack.enter_context(DydxWebSocketClient(network=network))
        sub = client.subscribe_candles(args.ticker, CandleResolution.ONE_MINUTE, on_candles)
        sub.wait_subscribed(timeout=15)
        time.sleep(args.duration)

    with lock:
        frame = to_frame(candles)
    print(frame.tail(10).to_string())
    if frame.empty:
        print("no candles received")
        return 1
    save_chart(frame, args.ticker, args.out)
    print(f"{len(frame)} candles; chart saved to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
