"""``dydx-ws book TICKER [--depth N]``: a live ladder of the client's local order book.

On a terminal the ladder redraws in place (rich); otherwise it is printed as text every
``--interval`` seconds (and once at the end), or as one JSON object per refresh with ``--json``.
"""

from __future__ import annotations

import argparse
import threading

from ..client import DydxWebSocketClient
from ..messages import Message
from . import common, views


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "book",
        help="show a live order book ladder",
        description="Keep the local order book of TICKER and show its top levels.",
    )
    parser.add_argument("ticker", metavar="TICKER", help="market, e.g. BTC-USD")
    parser.add_argument(
        "--depth", type=common.positive_int, default=10, metavar="N", help="levels per side"
    )
    parser.add_argument(
        "--interval",
        type=common.positive_float,
        default=1.0,
        metavar="S",
        help="seconds between two printed ladders without a terminal (default 1)",
    )
    common.add_network_options(parser)
    common.add_json_option(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    ((_, ticker),) = common.parse_channel("v4_orderbook", [args.ticker])
    assert ticker is not None
    network = common.resolve_network(args.network)
    out = common.Output(json_mode=args.json)
    done = threading.Event()
    updates = [0]

    def on_book(_msg: Message) -> None:
        updates[0] += 1
        if args.count is not None and updates[0] >= args.count:
            done.set()

    with DydxWebSocketClient(network=network, workers=1) as client:
        sub = client.subscribe_orderbook(ticker, on_book)
        common.connect(client, args.connect_timeout)
        common.wait_subscribed([sub], args.connect_timeout)
        book = client.order_book(ticker)
        if views.use_rich(args.json):
            from rich.live import Live

            with Live(views.book_table(book, args.depth), refresh_per_second=4) as live:
                common.run_until(
                    done, args.duration, lambda: live.update(views.book_table(book, args.depth))
                )
                live.update(views.book_table(book, args.depth))
        else:
            printer = _Printer(out, book, args.depth, args.interval, args.json)
            common.run_until(done, args.duration, printer.tick)
            printer.show()
    return common.EXIT_OK


class _Printer:
    def __init__(
        self, out: common.Output, book: object, depth: int, interval: float, json_mode: bool
    ) -> None:
        import time

        self._time = time.monotonic
        self.out = out
        self.book = book
        self.depth = depth
        self.interval = interval
        self.json_mode = json_mode
        self.next = self._time() + interval

    def tick(self) -> None:
        if self._time() >= self.next:
            self.next = self._time() + self.interval
            self.show()

    def show(self) -> None:
        from ..orderbook import OrderBook

        book = self.book
        assert isinstance(book, OrderBook)
        if self.json_mode:
            self.out.obj(views.book_json(book, self.depth))
        else:
            self.out.line("\n".join([*views.book_lines(book, self.depth), ""]))
