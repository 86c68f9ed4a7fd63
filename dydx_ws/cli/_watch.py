"""``dydx-ws watch CHANNEL [ID...]``: print every message of one channel, as text or JSON Lines.

Channel names are the wire names (``v4_trades``) or short aliases (``trades``, ``orderbook``,
``candles``, ``markets``, ``subaccounts``, ``parent``, ``block_height``); ids as on the wire:
``BTC-USD``, ``BTC-USD/1MIN``, ``dydx1.../0``.
"""

from __future__ import annotations

import argparse
import threading

from ..protocol._messages import Message
from . import _common as common


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="print the messages of a channel (text, or JSON Lines with --json)",
        description=(
            "Subscribe to CHANNEL (for each ID) and print one line per message. Examples: "
            "'watch trades BTC-USD ETH-USD', 'watch v4_candles BTC-USD/1MIN', "
            "'watch subaccounts dydx1.../0', 'watch markets', 'watch block_height'."
        ),
    )
    common.add_channel_arguments(parser)
    common.add_network_options(parser)
    common.add_json_option(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    keys = common.parse_channel(args.channel, args.ids)
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
