"""Rendering of the live views (order book ladder, demo dashboard) as plain text and with rich.

Plain text is used when stdout is not a terminal (pipes, CI), rich when it is. Nothing here
touches the network: every function takes the state it shows.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from decimal import Decimal
from typing import Any, Callable, List, Optional

from ..replay import wait_until
from ..state._orderbook import OrderBook

__all__ = ["book_json", "book_lines", "book_table", "fit_depth", "show_live", "use_rich"]

BOOK_TABLE_EXTRA_LINES = 9  # title, header (3), separator, bottom border, caption (2 if wrapped)


def use_rich(json_mode: bool = False) -> bool:
    """True when stdout is a terminal and rich is installed (the ``cli`` extra)."""
    if json_mode or not sys.stdout.isatty():
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def show_live(render: Callable[[], Any], done: threading.Event, duration: Optional[float]) -> None:
    """Redraw ``render()`` in place (rich ``Live``) about four times a second until ``done`` is
    set or ``duration`` seconds have passed; the last frame is left on the screen."""
    from rich.live import Live

    deadline = None if duration is None else time.monotonic() + duration
    with Live(render(), refresh_per_second=4) as live:
        try:
            wait_until(done, deadline, tick=lambda: live.update(render()))
        finally:
            live.update(render())


def fit_depth(requested: int, lines: int, other_lines: int = 0) -> int:
    """The book depth (levels per side, at least 1) whose :func:`book_table` fits in ``lines``
    terminal lines next to ``other_lines`` of other output; one line is left for the cursor, so
    the mid/spread caption at the bottom stays on screen."""
    room = lines - 1 - other_lines - BOOK_TABLE_EXTRA_LINES
    return max(1, min(requested, room // 2))


def terminal_lines() -> int:
    """The terminal's height now (24 if unknown); read at each redraw, so resizing works."""
    return shutil.get_terminal_size((80, 24)).lines


def _spread_text(book: OrderBook) -> str:
    mid, spread = book.mid, book.spread
    if mid is None or spread is None:
        return "mid -  spread -"
    bps = spread / mid * Decimal(10_000) if mid else Decimal(0)
    return f"mid {mid:f}  spread {spread:f} ({bps:.2f} bps)"


def book_lines(book: OrderBook, depth: int) -> List[str]:
    """A plain-text ladder: asks above (best ask last), bids below (best bid first)."""
    d = book.depth(depth)
    stale = "  STALE" if book.stale else ""
    lines = [f"{book.ticker}  {_spread_text(book)}  levels {len(book)}{stale}"]
    lines.append(f"{'':>14}  {'price':>14}  {'size':>14}")
    for lvl in reversed(d.asks):
        lines.append(f"{'ask':>14}  {lvl.price:>14f}  {lvl.size:>14f}")
    lines.append(f"{'':>14}  {'-' * 14}")
    for lvl in d.bids:
        lines.append(f"{'bid':>14}  {lvl.price:>14f}  {lvl.size:>14f}")
    return lines


def book_json(book: OrderBook, depth: int) -> Any:
    d = book.depth(depth)
    return {
        "ticker": book.ticker,
        "stale": book.stale,
        "mid": book.mid,
        "spread": book.spread,
        "bids": [[lvl.price, lvl.size] for lvl in d.bids],
        "asks": [[lvl.price, lvl.size] for lvl in d.asks],
        "message_id": book.last_message_id,
    }


def book_table(book: OrderBook, depth: int, title: Optional[str] = None) -> Any:
    """A rich ``Table``: asks (red) above bids (green), with cumulative sizes."""
    from rich.table import Table

    d = book.depth(depth)
    table = Table(
        title=title or f"{book.ticker}{'  (stale)' if book.stale else ''}",
        caption=_spread_text(book),
        expand=False,
    )
    table.add_column("side")
    table.add_column("price", justify="right")
    table.add_column("size", justify="right")
    table.add_column("total", justify="right")
    total = Decimal(0)
    rows = []
    for lvl in d.asks:
        total += lvl.size
        rows.append(("[red]ask[/]", f"[red]{lvl.price:f}[/]", f"{lvl.size:f}", f"{total:f}"))
    for row in reversed(rows):
        table.add_row(*row)
    table.add_section()
    total = Decimal(0)
    for lvl in d.bids:
        total += lvl.size
        table.add_row("[green]bid[/]", f"[green]{lvl.price:f}[/]", f"{lvl.size:f}", f"{total:f}")
    return table
