"""One row per market, for ``book`` and ``watch`` with several markets (or ``--all``): the rows
of a market channel (order book, trades, candles), sorted by id, drawn as plain text, a rich
table or a JSON object, with the connection pool as footer. Nothing here touches the network:
it reads the client's local books, the subscriptions' counters and a :class:`Tally`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..client import DydxWebSocketClient
from ..engine._subscriptions import Subscription, SubscriptionState
from ..models import Candle, Trade
from ..protocol._channels import CANDLES, ORDERBOOK, TRADES
from ..protocol._messages import CandlesMessage, Message, TradesMessage
from . import _common as common
from ._pool_view import pool_line, pool_summary

__all__ = ["COLUMNS", "MARKET_CHANNELS", "MarketTable", "Tally", "fit_rows"]

MARKET_CHANNELS = (ORDERBOOK, TRADES, CANDLES)

#: The columns of each channel's table (the first is the market's id).
COLUMNS: Dict[str, Tuple[str, ...]] = {
    ORDERBOOK: ("market", "bid", "ask", "spread", "levels", "state", "updates", "age"),
    TRADES: ("market", "price", "size", "side", "trades", "state", "messages", "age"),
    CANDLES: ("market", "start", "open", "high", "low", "close", "vol", "trades", "state", "age"),
}
_LEFT = {"market", "side", "state", "start"}
# Lines of the rich view besides its rows: title, top border, header, separator, "more" row,
# bottom border, the pool footer, and the cursor's line.
TABLE_EXTRA_LINES = 8

Markets = Callable[[], List[Subscription]]


def fit_rows(requested: Optional[int], lines: int) -> int:
    """The rows (at least 1) of a table that fits ``lines`` terminal lines, at most
    ``requested`` (None: as many as fit)."""
    room = max(1, lines - TABLE_EXTRA_LINES)
    return room if requested is None else max(1, min(requested, room))


@dataclass
class _Seen:
    """What a market's messages showed so far (trades and candles tables)."""

    trade: Optional[Trade] = None
    trades: int = 0  # trades in updates (the snapshot's are history)
    candle: Optional[Candle] = None


class Tally:
    """Per subscription id: the newest trade, the trades counted, the newest candle. Fed by the
    callback (a worker thread), read by the renderer (the main thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Dict[str, _Seen] = {}

    def add(self, msg: Message) -> None:
        if not isinstance(msg, (TradesMessage, CandlesMessage)) or msg.id is None:
            return
        with self._lock:
            seen = self._seen.setdefault(msg.id, _Seen())
            if isinstance(msg, TradesMessage) and msg.trades:
                newest = max(msg.trades, key=lambda t: t.created_at)
                if seen.trade is None or newest.created_at >= seen.trade.created_at:
                    seen.trade = newest
                if not msg.is_snapshot:
                    seen.trades += len(msg.trades)
            elif isinstance(msg, CandlesMessage) and msg.candles:
                newest_candle = max(msg.candles, key=lambda c: c.started_at)
                if seen.candle is None or newest_candle.started_at >= seen.candle.started_at:
                    seen.candle = newest_candle

    def get(self, sid: str) -> _Seen:
        with self._lock:
            seen = self._seen.get(sid)
            return _Seen() if seen is None else _Seen(seen.trade, seen.trades, seen.candle)


def _age(last: Optional[float], now: float) -> Optional[float]:
    return None if last is None else max(0.0, now - last)


def _age_text(seconds: Any) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


_STATE = {
    SubscriptionState.PENDING: "pending",
    SubscriptionState.FAILED: "refused",
    SubscriptionState.UNSUBSCRIBED: "ended",
}


class MarketTable:
    """The table of one market channel over ``markets()`` (the subscriptions, re-read at every
    redraw: ``ALL_MARKETS`` gains and loses members)."""

    def __init__(
        self,
        client: DydxWebSocketClient,
        channel: str,
        markets: Markets,
        tally: Tally,
        title: str,
    ) -> None:
        self.client = client
        self.channel = channel
        self.columns = COLUMNS[channel]
        self.markets = markets
        self.tally = tally
        self.title = title

    # -- data --------------------------------------------------------------------------------
    def rows(self) -> List[Dict[str, Any]]:
        """Every market's row (column -> value), sorted by id."""
        now = time.time()
        subs = sorted((s for s in self.markets() if s.id is not None), key=lambda s: str(s.id))
        return [self._row(sub, now) for sub in subs]

    def _row(self, sub: Subscription, now: float) -> Dict[str, Any]:
        sid = str(sub.id)
        state = _STATE.get(sub.state, "live")
        age = _age(sub.last_message_at, now)
        if self.channel == ORDERBOOK:
            try:
                book = self.client.order_book(sid)
            except KeyError:  # unsubscribed meanwhile (a delisting)
                return {"market": sid, "state": "ended"}
            bid, ask = book.top()
            if state == "live" and book.stale:
                state = "stale"
            spread = None if bid is None or ask is None else ask.price - bid.price
            return {
                "market": sid,
                "bid": None if bid is None else bid.price,
                "ask": None if ask is None else ask.price,
                "spread": spread,
                "levels": len(book),
                "state": state,
                "updates": sub.messages_received,
                "age": age,
            }
        seen = self.tally.get(sid)
        if self.channel == TRADES:
            t = seen.trade
            return {
                "market": sid,
                "price": None if t is None else t.price,
                "size": None if t is None else t.size,
                "side": None if t is None else common.text_of(t.side),
                "trades": seen.trades,
                "state": state,
                "messages": sub.messages_received,
                "age": age,
            }
        c = seen.candle
        return {
            "market": sid,
            "start": None if c is None else f"{c.started_at:%H:%M}",
            "open": None if c is None else c.open,
            "high": None if c is None else c.high,
            "low": None if c is None else c.low,
            "close": None if c is None else c.close,
            "vol": None if c is None else c.base_token_volume,
            "trades": None if c is None else c.trades,
            "state": state,
            "age": age,
        }

    def _cells(self, row: Dict[str, Any]) -> List[str]:
        return [_age_text(row.get(c)) if c == "age" else _text(row.get(c)) for c in self.columns]

    def _heading(self, total: int, shown: int) -> str:
        more = f", {shown} shown" if shown < total else ""
        return f"{self.title}: {total} market{'' if total == 1 else 's'}{more}"

    # -- views -------------------------------------------------------------------------------
    def lines(self, limit: Optional[int] = None) -> List[str]:
        """Plain text: a heading, the header and up to ``limit`` rows, then the pool."""
        rows = self.rows()
        shown = rows if limit is None else rows[:limit]
        cells = [list(self.columns), *(self._cells(r) for r in shown)]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        out = [self._heading(len(rows), len(shown))]
        for r in cells:
            out.append(
                "  ".join(
                    v.ljust(w) if c in _LEFT else v.rjust(w)
                    for c, v, w in zip(self.columns, r, widths)
                ).rstrip()
            )
        if len(shown) < len(rows):
            out.append(f"... {len(rows) - len(shown)} more (--rows N shows more)")
        out.append(pool_line(self.client.stats()))
        return out

    def json(self, limit: Optional[int] = None) -> Dict[str, Any]:
        rows = self.rows()
        shown = rows if limit is None else rows[:limit]
        for row in shown:
            if row.get("age") is not None:
                row["age"] = round(row["age"], 3)
        return {
            "channel": self.channel,
            "total": len(rows),
            "markets": shown,
            "pool": pool_summary(self.client.stats()),
        }

    def rich(self, limit: int) -> Any:
        """A rich ``Table`` of at most ``limit`` rows, and the pool on one line below it."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        rows = self.rows()
        shown = rows[:limit]
        table = Table(title=self._heading(len(rows), len(shown)))
        for c in self.columns:
            table.add_column(c, justify="left" if c in _LEFT else "right", no_wrap=True)
        for row in shown:
            cells = self._cells(row)
            state = row.get("state")
            if state != "live":
                cells = [f"[yellow]{v}[/]" for v in cells]
            elif self.channel == TRADES and row.get("side") in ("BUY", "SELL"):
                color = "green" if row["side"] == "BUY" else "red"
                i = self.columns.index("side")
                cells[i] = f"[{color}]{cells[i]}[/]"
            table.add_row(*cells)
        if len(shown) < len(rows):
            table.add_row(f"[dim]... {len(rows) - len(shown)} more[/]")
        footer = Text(pool_line(self.client.stats()), no_wrap=True, overflow="ellipsis")
        return Group(table, footer)
