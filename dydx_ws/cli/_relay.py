"""``dydx-ws relay [--redis URL] [--parquet DIR] SUB...``: a long-lived ingest into sinks.

Each ``SUB`` is ``CHANNEL`` or ``CHANNEL:ID`` (``orderbook:BTC-USD``, ``trades:ETH-USD``,
``candles:BTC-USD/1MIN``, ``markets``, ``subaccounts:ADDRESS/0``). Frames go to a
:class:`~dydx_ws.sinks.RedisStreamSink` and/or a :class:`~dydx_ws.sinks.ParquetSink`; a status
line (rates, queue depths, drops, files written) is printed every ``--status-interval``
seconds on stderr; Ctrl-C (or SIGTERM) stops the client and flushes the sinks.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any, Dict, List

from ..client import DydxWebSocketClient
from ..engine._subscriptions import Key
from ..replay import subscribe_key
from ..sinks.base import Sink
from . import _common as common
from ._pool_view import pool_summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "relay",
        help="ingest subscriptions into Redis Streams and/or a Parquet data set",
        description=(
            "Subscribe to every SUB (CHANNEL or CHANNEL:ID, e.g. orderbook:BTC-USD markets) "
            "and write every frame to --redis and/or --parquet until Ctrl-C."
        ),
    )
    parser.add_argument("subs", nargs="+", metavar="SUB", help="CHANNEL or CHANNEL:ID")
    parser.add_argument("--redis", metavar="URL", help="redis://host:port/db")
    parser.add_argument("--parquet", metavar="DIR", help="root of the Parquet data set")
    parser.add_argument(
        "--status-interval",
        type=common.positive_float,
        default=2.0,
        metavar="S",
        help="seconds between status lines (default 2)",
    )
    common.add_network_options(parser)
    common.add_bounds(parser, count=False)
    parser.set_defaults(func=run)


def parse_subs(subs: List[str]) -> List[Key]:
    keys: List[Key] = []
    for sub in subs:
        channel, _, sid = sub.partition(":")
        keys += common.parse_channel(channel, [sid] if sid else [])
    return keys


def make_sinks(args: argparse.Namespace) -> List[Sink]:
    sinks: List[Sink] = []
    try:
        if args.redis:
            from ..sinks.redis import RedisStreamSink

            sinks.append(RedisStreamSink(args.redis))
        if args.parquet:
            from ..sinks.parquet import ParquetSink

            sinks.append(ParquetSink(args.parquet))
    except ImportError as exc:
        raise common.CliError(str(exc), common.EXIT_USAGE) from None
    if not sinks:
        raise common.CliError("give --redis URL and/or --parquet DIR", common.EXIT_USAGE)
    return sinks


@common.command
def run(args: argparse.Namespace) -> int:
    keys = parse_subs(args.subs)
    sinks = make_sinks(args)
    network = common.resolve_network(args.network)
    out = common.Output()
    with DydxWebSocketClient(network=network) as client:
        for sink in sinks:
            client.add_sink(sink)
        subs = [subscribe_key(client, channel, sid, None) for channel, sid in keys]
        common.connect(client, args.connect_timeout)
        common.wait_subscribed(subs, args.connect_timeout)
        status = Status(client, out)
        out.error(f"relaying {len(keys)} subscription(s) to {', '.join(s.name for s in sinks)}")
        ticker = common.Every(args.status_interval, status.print)
        common.run_until(threading.Event(), args.duration, tick=ticker.tick)
    status.print()
    return common.EXIT_OK


class Status:
    """One status line: frames/s in, per sink written/s, queue depth, drops, files."""

    def __init__(self, client: DydxWebSocketClient, out: common.Output) -> None:
        self.client = client
        self.out = out
        self.last = time.monotonic()
        self.prev: Dict[str, Any] = client.stats()

    def print(self) -> None:
        now = time.monotonic()
        stats = self.client.stats()
        dt = max(1e-9, now - self.last)
        parts = [f"in {(stats['frames'] - self.prev['frames']) / dt:.0f}/s"]
        for name, sink in stats["sinks"].items():
            before = self.prev["sinks"].get(name, {}).get("written", 0)
            text = (
                f"{name} {(sink['written'] - before) / dt:.0f}/s queue {sink['queue_depth']} "
                f"dropped {sink['dropped']} failed {sink['failed']}"
            )
            if "files" in sink:
                text += f" files {sink['files']}"
            if "checkpoints" in sink:
                text += f" checkpoints {sink['checkpoints']}"
            parts.append(text)
        pool = pool_summary(stats)
        parts.append(f"connections {pool['connections']} ({pool['connected']} connected)")
        self.out.error(" | ".join(parts))
        self.prev, self.last = stats, now
