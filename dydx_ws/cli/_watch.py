"""``dydx-ws watch CHANNEL [ID...]``: print every message of one channel, as text or JSON Lines.

Channel names are the wire names (``v4_trades``) or short aliases (``trades``, ``orderbook``,
``candles``, ``markets``, ``subaccounts``, ``parent``, ``block_height``); ids as on the wire:
``BTC-USD``, ``BTC-USD/1MIN``, ``dydx1.../0``, repeated or comma-separated. ``--table`` (implied
by ``--all``, every market) shows a market channel as one row per market instead
(:mod:`._markets`).
"""

from __future__ import annotations

import argparse
import threading
from typing import List, Optional

from ..engine._subscriptions import Key
from ..protocol._channels import CANDLES
from ..protocol._messages import Message
from ..protocol._validation import validate_resolution
from . import _common as common
from . import _markets as markets
from ._market_table import MARKET_CHANNELS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="print the messages of a channel (text, or JSON Lines with --json)",
        description=(
            "Subscribe to CHANNEL (for each ID) and print one line per message. Examples: "
            "'watch trades BTC-USD ETH-USD', 'watch v4_candles BTC-USD/1MIN', "
            "'watch subaccounts dydx1.../0', 'watch markets', 'watch block_height'. "
            "Several markets as one table, a row per market: 'watch trades --all', "
            "'watch orderbook BTC-USD,ETH-USD --table'."
        ),
    )
    common.add_channel_arguments(parser)
    parser.add_argument(
        "--table",
        action="store_true",
        help="one row per market (trades, orderbook, candles) instead of a line per message",
    )
    markets.add_market_options(parser, interval=True)
    parser.add_argument(
        "--resolution",
        default=None,
        metavar="RES",
        help="candles: the resolution of --all and of tickers without /RES (default 1MIN)",
    )
    common.add_network_options(parser)
    common.add_json_option(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    channel = common.channel_name(args.channel)
    resolution = _resolution(channel, args.resolution)
    ids = common.split_ids(args.ids)
    if channel == CANDLES:  # TICKER and TICKER/ take --resolution
        ids = [
            f"{i.rstrip('/')}/{resolution}" if i.endswith("/") or "/" not in i else i for i in ids
        ]
    if args.all:
        markets.check_all(channel, ids)
        return markets.run_table(args, channel, None, resolution=resolution)
    if args.table and channel not in MARKET_CHANNELS:
        raise common.CliError(
            f"--table is for the market channels (trades, orderbook, candles), not {channel}",
            common.EXIT_USAGE,
        )
    keys = common.parse_channel(channel, ids)
    if args.table:
        return markets.run_table(args, channel, keys, resolution=resolution)
    return _lines(args, keys)


def _resolution(channel: str, given: Optional[str]) -> str:
    if given is None:
        return "1MIN"
    if channel != CANDLES:
        raise common.CliError(f"--resolution is for candles, not {channel}", common.EXIT_USAGE)
    try:
        return validate_resolution(given)
    except ValueError as exc:
        raise common.CliError(str(exc), common.EXIT_USAGE) from None


def _lines(args: argparse.Namespace, keys: List[Key]) -> int:
    """One line (or JSON object) per message: the single-market behaviour."""
    out = common.Output(json_mode=args.json)
    done = threading.Event()
    lock = threading.Lock()
    shown = 0

    def on_message(msg: Message) -> None:  # a worker thread
        nonlocal shown
        with lock:
            if done.is_set():
                return  # --count reached: later messages are not shown
            shown += 1
            if args.count is not None and shown >= args.count:
                done.set()
        out.message(msg)
        if out.broken.is_set():  # stdout closed (``| head``)
            done.set()

    with common.live_client(args, keys, on_message) as client:
        common.run_until(done, args.duration)
        errors = int(client.stats()["callback_errors"])
    if not args.json and not out.broken.is_set():
        out.error(f"{shown} message(s)")
    if errors:
        out.error(f"dydx-ws watch: error: {errors} message(s) could not be shown (see the log)")
        return common.EXIT_ERROR
    return common.EXIT_OK
