"""``dydx-ws demo [--duration S]``: the SDK end to end, offline, in one command.

Starts a local Indexer emulator, subscribes to all seven channels (trades, order book and
1-minute candles of two markets, markets, the demo account's subaccount 0 and parent subaccount
0, block height) and shows a live view: top of book, last trades, the current candle, block
height, account equity and open orders. At the end it prints what was received; the exit code is
0 when every channel delivered data, 1 otherwise (130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from ..client import DydxWebSocketClient
from ..models import Candle
from ..protocol._channels import TRADES
from ..protocol._messages import BlockHeightMessage, CandlesMessage, Message, TradesMessage
from . import _common as common
from . import _views as views
from ._pool_view import pool_line, pool_summary

_CHANNELS = common.CHANNELS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a local emulator and show live data from every channel",
        description=(
            "Start a local dYdX Indexer emulator, subscribe to every channel for two markets and "
            "the demo account, and show a live view. No network needed."
        ),
    )
    common.add_bounds(parser, count=False)
    parser.add_argument(
        "--markets",
        default="BTC-USD,ETH-USD",
        metavar="A,B",
        help="two comma-separated markets (default BTC-USD,ETH-USD)",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    parser.add_argument(
        "--block-time",
        type=common.positive_float,
        default=0.5,
        metavar="S",
        help="emulated seconds per block (default 0.5)",
    )
    common.add_json_option(parser)
    parser.set_defaults(func=run)


class _State:
    """What the callbacks collected (written by worker threads, read by the main thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Dict[str, int] = dict.fromkeys(_CHANNELS, 0)
        self.trades: Deque[Tuple[str, Any]] = deque(maxlen=8)
        self.candles: Dict[str, Candle] = {}
        self.height: Optional[int] = None
        self.block_time: Any = None

    def on_message(self, msg: Message) -> None:
        with self.lock:
            channel = msg.channel or ""
            self.counts[channel] = self.counts.get(channel, 0) + 1
            if isinstance(msg, TradesMessage):
                for trade in reversed(msg.trades[:8]):  # snapshot: newest first
                    self.trades.appendleft((msg.id or "", trade))
            elif isinstance(msg, CandlesMessage):
                for candle in msg.candles:
                    old = self.candles.get(candle.ticker)
                    if old is None or candle.started_at >= old.started_at:
                        self.candles[candle.ticker] = candle
            elif isinstance(msg, BlockHeightMessage):
                self.height = msg.height
                self.block_time = msg.time


@common.command
def run(args: argparse.Namespace) -> int:
    markets = _parse_markets(args.markets)
    try:
        from ..emulator import IndexerEmulator
    except ImportError as exc:  # websockets missing
        raise common.CliError(f"the emulator needs the 'emulator' extra: {exc}") from None

    out = common.Output(json_mode=args.json)
    state = _State()
    started = time.monotonic()
    interrupted = False
    emulator = IndexerEmulator(markets=markets, seed=args.seed, block_time=args.block_time)
    with emulator as emu, DydxWebSocketClient(network=emu.network, workers=2) as client:
        _subscribe_all(client, markets, emu.demo_address, state.on_message)
        common.connect(client, 10.0)
        view = _View(client, state, markets, emu.demo_address, args.duration, started)
        try:
            _show(view, out, args)
        except KeyboardInterrupt:  # still print the summary, then exit 130
            interrupted = True
        stats = client.stats()
    elapsed = time.monotonic() - started
    missing = _summary(out, state, stats, elapsed, interrupted)
    if interrupted:
        return common.EXIT_INTERRUPTED
    return common.EXIT_ERROR if missing else common.EXIT_OK


def _parse_markets(text: str) -> List[str]:
    markets = [m.strip() for m in text.split(",") if m.strip()]
    if len(markets) != 2:
        raise common.CliError(
            "--markets takes exactly two markets, e.g. BTC-USD,ETH-USD", common.EXIT_USAGE
        )
    for ticker in markets:
        common.parse_channel(TRADES, [ticker])  # validates the ticker (exit 2)
    return markets


def _subscribe_all(
    client: DydxWebSocketClient, markets: List[str], address: str, callback: Any
) -> None:
    """All seven channels: trades, book and 1MIN candles of each market, markets, the account's
    subaccount 0 and parent subaccount 0, block height."""
    for ticker in markets:
        client.subscribe_trades(ticker, callback)
        client.subscribe_orderbook(ticker, callback)
        client.subscribe_candles(ticker, "1MIN", callback)
    client.subscribe_markets(callback)
    client.subscribe_subaccount(address, 0, callback)
    client.subscribe_parent_subaccount(address, 0, callback)
    client.subscribe_block_height(callback)


def _show(view: _View, out: common.Output, args: argparse.Namespace) -> None:
    """Until ``--duration`` (or Ctrl-C): the rich dashboard on a terminal, else a status line a
    second (nothing with ``--json``: only the summary is printed)."""
    never = threading.Event()
    if views.use_rich(args.json):
        views.show_live(view.render, never, args.duration)
    elif args.json:
        common.run_until(never, args.duration)
    else:
        common.run_until(
            never, args.duration, common.Every(1.0, lambda: out.line(view.line())).tick
        )


FULL_LINES = 52  # terminal lines the full dashboard needs (at 80 columns: 50 + cursor)


class _View:
    def __init__(
        self,
        client: DydxWebSocketClient,
        state: _State,
        markets: List[str],
        address: str,
        duration: Optional[float],
        started: float,
    ) -> None:
        self.client = client
        self.state = state
        self.markets = markets
        self.address = address
        self.duration = duration
        self.started = started

    def account(self) -> Dict[str, Any]:
        sub = self.client.subaccount(self.address, 0)
        parent = self.client.parent_subaccount(self.address, 0)
        return {
            "equity": sub.equity,
            "free_collateral": sub.free_collateral,
            "open_orders": list(sub.open_orders.values()),
            "positions": list(sub.positions.values()),
            "parent_equity": parent.equity,
        }

    def line(self) -> str:
        s = self.state
        with s.lock:
            height = s.height
            total = sum(s.counts.values())
            last = {t: tr for t, tr in reversed(s.trades)}
        parts = [f"[{time.monotonic() - self.started:5.1f}s] height {height or '-'}"]
        for ticker in self.markets:
            bid, ask = self.client.order_book(ticker).top()
            trade = last.get(ticker)
            t = f" last {common.text_of(trade.side)} {trade.size}@{trade.price}" if trade else ""
            parts.append(f"{ticker} {bid.price if bid else '-'}/{ask.price if ask else '-'}{t}")
        acct = self.account()
        parts.append(f"equity {common.money(acct['equity'])} orders {len(acct['open_orders'])}")
        parts.append(f"messages {total}")
        return " | ".join(parts)

    def render(self, lines: Optional[int] = None) -> Any:
        """The dashboard; on a terminal shorter than ``FULL_LINES`` (``lines``, default: the
        terminal's height) a compact one: the two books as deep as fits, and one line each for
        the last trades, message counts and the account."""
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        lines = views.terminal_lines() if lines is None else lines

        s = self.state
        with s.lock:
            counts = dict(s.counts)
            trades = list(s.trades)
            candles = dict(s.candles)
            height, btime = s.height, s.block_time
        elapsed = time.monotonic() - self.started
        until = f" / {self.duration:g}s" if self.duration else "  (Ctrl-C to stop)"
        header = (
            f"[bold]dydx-ws demo[/]  emulator {self.client.network.ws_url}  "
            f"block [bold]{height or '-'}[/] {btime:%H:%M:%S}  {elapsed:.0f}s{until}"
            if btime is not None
            else f"[bold]dydx-ws demo[/]  connecting... {elapsed:.0f}s{until}"
        )
        compact = lines < FULL_LINES
        depth = views.fit_depth(5, lines, other_lines=5) if compact else 5  # panel, 3 lines
        books = Table.grid(padding=(0, 2))
        books.add_row(*[views.book_table(self.client.order_book(t), depth) for t in self.markets])
        if compact:
            acct = self.account()
            last = {t: tr for t, tr in reversed(trades)}
            trade_bits = [
                f"{t} {common.text_of(tr.side)} {tr.size:f}@{tr.price:f}" for t, tr in last.items()
            ]
            count_bits = [f"{common.SHORT[c]} {counts.get(c, 0)}" for c in _CHANNELS]
            rows = [
                "last " + ("  ".join(trade_bits) or "-"),
                "messages " + " ".join(count_bits),
                f"equity {common.money(acct['equity'])}  free "
                f"{common.money(acct['free_collateral'])}  orders {len(acct['open_orders'])}  "
                f"positions {len(acct['positions'])}",
            ]
            status = [Text(r, no_wrap=True, overflow="ellipsis") for r in rows]
            return Panel(Group(books, *status), title=header, title_align="left")
        tt = Table(title="last trades")
        for col in ("market", "side", "size", "price", "time"):
            tt.add_column(col, justify="right" if col in ("size", "price") else "left")
        for ticker, tr in trades:
            color = "green" if common.text_of(tr.side) == "BUY" else "red"
            tt.add_row(
                ticker,
                f"[{color}]{common.text_of(tr.side)}[/]",
                f"{tr.size:f}",
                f"{tr.price:f}",
                f"{tr.created_at:%H:%M:%S}",
            )
        ct = Table(title="current 1MIN candle")
        for col in ("market", "start", "open", "high", "low", "close", "trades"):
            ct.add_column(col)
        for ticker in self.markets:
            c = candles.get(ticker)
            if c is not None:
                ct.add_row(
                    ticker,
                    f"{c.started_at:%H:%M}",
                    f"{c.open:f}",
                    f"{c.high:f}",
                    f"{c.low:f}",
                    f"{c.close:f}",
                    str(c.trades),
                )
        acct = self.account()
        at = Table(title=f"account {self.address[:12]}.../0")
        for col in ("order", "market", "side", "size", "price", "status"):
            at.add_column(col)
        for o in acct["open_orders"][:6]:
            at.add_row(
                o.id[:8],
                o.ticker or "-",
                common.text_of(o.side),
                f"{o.size}",
                f"{o.price}",
                common.text_of(o.status),
            )
        money = (
            f"equity [bold]{common.money(acct['equity'])}[/]  free collateral "
            f"{common.money(acct['free_collateral'])}  positions "
            + (
                ", ".join(
                    f"{p.market} {common.text_of(p.side)} {p.size}" for p in acct["positions"]
                )
                or "none"
            )
            + f"  parent 0 equity {common.money(acct['parent_equity'])}"
        )
        nt = Table(title="messages")
        nt.add_column("channel")
        nt.add_column("count", justify="right")
        for channel in _CHANNELS:
            nt.add_row(common.SHORT[channel], str(counts.get(channel, 0)))
        middle = Table.grid(padding=(0, 2))
        middle.add_row(tt, Group(ct, nt))
        return Panel(Group(books, middle, money, at), title=header, title_align="left")


def _summary(
    out: common.Output,
    state: _State,
    stats: Dict[str, Any],
    elapsed: float,
    interrupted: bool,
) -> List[str]:
    with state.lock:
        counts = {c: state.counts.get(c, 0) for c in _CHANNELS}
        height = state.height
    missing = [c for c, n in counts.items() if n == 0]
    if out.json_mode:
        out.obj(
            {
                "summary": {
                    "seconds": round(elapsed, 2),
                    "messages": counts,
                    "total": sum(counts.values()),
                    "block_height": height,
                    "missing": missing,
                    "callback_errors": stats.get("callback_errors", 0),
                    "pool": pool_summary(stats),
                    "interrupted": interrupted,
                }
            }
        )
        return missing
    lines = [f"demo summary ({elapsed:.1f} s):"]
    for channel, n in counts.items():
        lines.append(
            f"  {channel:<22} {n:>7} message(s){'   <- nothing received' if not n else ''}"
        )
    lines.append(f"  {'total':<22} {sum(counts.values()):>7}")
    lines.append(f"  last block height {height}")
    lines.append(f"  {pool_line(stats)}")
    if missing:
        lines.append(f"no data from: {', '.join(missing)}")
    else:
        lines.append("data received from all seven channels")
    out.line("\n".join(lines))
    return missing
