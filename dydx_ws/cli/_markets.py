"""Several markets at once for ``book`` and ``watch``: ``--all`` (every market, following
listings: ``ALL_MARKETS``) or tickers given comma-separated and/or repeated, shown as one live
table with a row per market (:mod:`._market_table`) and the connection pool as footer.

On a terminal (rich) the table redraws in place with as many rows as fit (or ``--rows N``);
otherwise it is printed every ``--interval`` seconds and once at the end, or as one JSON object
per refresh with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ..client import DydxWebSocketClient
from ..engine._groups import ALL_MARKETS, SubscriptionGroup
from ..engine._subscriptions import Key, Subscription
from ..errors import SubscriptionError
from ..protocol._channels import CANDLES, ORDERBOOK, TRADES
from ..protocol._messages import Message
from ..replay import subscribe_key
from . import _common as common
from . import _views as views
from ._market_table import MARKET_CHANNELS, Markets, MarketTable, Tally, fit_rows

__all__ = ["add_market_options", "check_all", "run_table"]


def add_market_options(parser: argparse.ArgumentParser, *, interval: bool) -> None:
    """``--all``, ``--rows N`` (and ``--interval S`` when the command has none yet)."""
    parser.add_argument(
        "--all",
        action="store_true",
        help="every market (follows listings and delistings); no TICKER then",
    )
    parser.add_argument(
        "--rows",
        type=common.positive_int,
        default=None,
        metavar="N",
        help="at most N market rows (default: as many as fit the terminal; all without one)",
    )
    if interval:
        parser.add_argument(
            "--interval",
            type=common.positive_float,
            default=1.0,
            metavar="S",
            help="seconds between two printed tables without a terminal (default 1)",
        )


def check_all(channel: str, ids: List[str]) -> None:
    """``--all`` needs a market channel and no ids (a usage error otherwise)."""
    if channel not in MARKET_CHANNELS:
        raise common.CliError(
            f"--all is for the market channels (trades, orderbook, candles), not {channel}",
            common.EXIT_USAGE,
        )
    if ids:
        raise common.CliError(
            f"give tickers or --all, not both (got --all and {' '.join(ids)!r})",
            common.EXIT_USAGE,
        )


def _subscribe_every_market(
    client: DydxWebSocketClient, channel: str, resolution: str, callback: Callable[[Any], Any]
) -> SubscriptionGroup:
    if channel == ORDERBOOK:
        return client.subscribe_orderbook(ALL_MARKETS, callback)
    if channel == TRADES:
        return client.subscribe_trades(ALL_MARKETS, callback)
    assert channel == CANDLES
    return client.subscribe_candles(ALL_MARKETS, resolution, callback)


@contextlib.contextmanager
def live_markets(
    args: argparse.Namespace,
    channel: str,
    keys: Optional[List[Key]],
    resolution: str,
    callback: Callable[[Message], Any],
) -> Iterator[Tuple[DydxWebSocketClient, Markets]]:
    """A client subscribed to ``keys`` (None: every market of ``channel``), connected within
    ``--connect-timeout`` (exit 3). A refused ticker given by name is exit 4; with ``--all`` a
    refused market (e.g. just listed) stays in the table as ``refused`` and is retried."""
    network = common.resolve_network(args.network)
    with DydxWebSocketClient(network=network, workers=1) as client:
        markets: Markets
        if keys is None:
            group = _subscribe_every_market(client, channel, resolution, callback)
            markets = lambda: list(group)  # noqa: E731  (members come and go with listings)
            common.connect(client, args.connect_timeout)
            try:
                group.wait_subscribed(args.connect_timeout)
            except SubscriptionError as exc:
                common.Output().error(f"dydx-ws {args.command}: {exc} (retried)")
        else:
            subs: List[Subscription] = [subscribe_key(client, c, i, callback) for c, i in keys]
            markets = lambda: list(subs)  # noqa: E731
            common.connect(client, args.connect_timeout)
            common.wait_subscribed(subs, args.connect_timeout)
        yield client, markets


def run_table(
    args: argparse.Namespace,
    channel: str,
    keys: Optional[List[Key]],
    *,
    resolution: str = "1MIN",
) -> int:
    """Show the table of ``channel`` for ``keys`` (None: ``--all``) until ``--duration``,
    ``--count`` messages or Ctrl-C."""
    out = common.Output(json_mode=args.json)
    tally = Tally()
    done = threading.Event()
    lock = threading.Lock()
    seen = 0

    def on_message(msg: Message) -> None:  # the one worker thread
        nonlocal seen
        tally.add(msg)
        with lock:
            seen += 1
            if args.count is not None and seen >= args.count:
                done.set()

    what = "every market" if keys is None else "markets"
    title = f"{common.SHORT.get(channel, channel)}, {what}"
    with live_markets(args, channel, keys, resolution, on_message) as (client, markets):
        table = MarketTable(client, channel, markets, tally, title)
        if views.use_rich(args.json):
            views.show_live(
                lambda: table.rich(fit_rows(args.rows, views.terminal_lines())),
                done,
                args.duration,
            )
        else:

            def show() -> None:
                if out.json_mode:
                    out.obj(table.json(args.rows))
                else:
                    out.line("\n".join([*table.lines(args.rows), ""]))
                if out.broken.is_set():  # stdout closed (``| head``)
                    done.set()

            common.run_until(done, args.duration, common.Every(args.interval, show).tick)
            show()
        errors = int(client.stats()["callback_errors"])
    if errors:
        out.error(f"dydx-ws {args.command}: error: {errors} message(s) could not be counted")
        return common.EXIT_ERROR
    return common.EXIT_OK
