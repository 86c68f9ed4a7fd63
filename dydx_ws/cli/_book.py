"""``dydx-ws book TICKER [--depth N]``: a live ladder of the client's local order book.

On a terminal the ladder redraws in place (rich); otherwise it is printed as text every
``--interval`` seconds (and once at the end), or as one JSON object per refresh with ``--json``;
with ``--count N`` (no terminal) it is printed after each of the first N book updates.

Several tickers (``A,B`` or ``A B``) or ``--all`` show one table instead, a row per market: best
bid and ask, spread, levels, state (``stale``...), age (:mod:`._markets`).
"""

from __future__ import annotations

import argparse
import threading
from typing import List

from ..engine._subscriptions import Key
from ..protocol._channels import ORDERBOOK
from ..protocol._messages import Message, OrderbookMessage
from ..state._orderbook import OrderBook
from . import _common as common
from . import _markets as markets
from . import _views as views


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "book",
        help="show a live order book ladder",
        description=(
            "Keep the local order book of TICKER and show its top levels; for several tickers "
            "(A,B or A B) or --all, one row per market."
        ),
    )
    parser.add_argument(
        "tickers",
        nargs="*",
        default=[],
        metavar="TICKER",
        help="market, e.g. BTC-USD; several: comma-separated or repeated",
    )
    parser.add_argument(
        "--depth", type=common.positive_int, default=10, metavar="N", help="levels per side"
    )
    parser.add_argument(
        "--interval",
        type=common.positive_float,
        default=1.0,
        metavar="S",
        help="seconds between two printed ladders (tables) without a terminal (default 1)",
    )
    markets.add_market_options(parser, interval=False)
    common.add_network_options(parser)
    common.add_json_option(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    tickers = common.split_ids(args.tickers)
    if args.all:
        markets.check_all(ORDERBOOK, tickers)
        return markets.run_table(args, ORDERBOOK, None)
    if not tickers:
        raise common.CliError(
            "give a TICKER (several: A,B or A B) or --all for every market", common.EXIT_USAGE
        )
    keys = common.parse_channel(ORDERBOOK, tickers)
    if len(keys) > 1:
        return markets.run_table(args, ORDERBOOK, keys)
    return _ladder(args, keys)


def _ladder(args: argparse.Namespace, keys: List[Key]) -> int:
    """One market: its ladder (the single-ticker behaviour)."""
    ticker = keys[0][1]
    assert ticker is not None
    out = common.Output(json_mode=args.json)
    done = threading.Event()
    rich = views.use_rich(args.json)
    per_update = args.count is not None and not rich  # --count N: one ladder per update
    updates = 0

    def on_book(msg: Message) -> None:  # the one worker thread
        nonlocal updates
        if done.is_set():
            return
        updates += 1
        if per_update and isinstance(msg, OrderbookMessage) and msg.book is not None:
            show_ladder(out, msg.book, args.depth)
        if args.count is not None and updates >= args.count:
            done.set()

    with common.live_client(args, keys, on_book) as client:
        book = client.order_book(ticker)
        if rich:

            def table() -> object:  # as deep as asked, as long as it fits the terminal
                depth = views.fit_depth(args.depth, views.terminal_lines())
                return views.book_table(book, depth)

            views.show_live(table, done, args.duration)
        elif per_update:
            common.run_until(done, args.duration)
        else:

            def show() -> None:
                show_ladder(out, book, args.depth)

            common.run_until(done, args.duration, common.Every(args.interval, show).tick)
            show()
    return common.EXIT_OK


def show_ladder(out: common.Output, book: OrderBook, depth: int) -> None:
    """Print the ladder once: a JSON object with ``--json``, else text and a blank line."""
    if out.json_mode:
        out.obj(views.book_json(book, depth))
    else:
        out.line("\n".join([*views.book_lines(book, depth), ""]))
