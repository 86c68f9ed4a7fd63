"""Notebook support: the client's HTML status card, and "re-running a cell replaces its client".

Jupyter users re-run cells. A cell such as ``client = DydxWebSocketClient(...); client.start()``
run twice would otherwise leave the first client's I/O and worker threads running (and its
socket open) with nothing referring to it. :func:`track` — called by the client's constructor —
stops the client that *the same cell* created in an earlier execution:

- the cell is identified by the front end's cell id when it sends one (JupyterLab, Notebook 7),
  else by the code name IPython gives the cell (ipykernel names it after a hash of the cell's
  text, so re-running an unchanged cell gives the same name), plus the line in the cell;
- clients made by the same line in the *same* execution (a loop) are all kept;
- outside IPython nothing happens.

:func:`stop_all` stops every client tracked in this process (e.g. before a kernel restart).
:func:`status_html` renders the card shown by ``DydxWebSocketClient._repr_html_``.
"""

from __future__ import annotations

import html
import logging
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .protocol._channels import CHANNEL_TABLE

if TYPE_CHECKING:
    from .client import DydxWebSocketClient

__all__ = ["is_tracked", "status_html", "stop_all", "track"]

log = logging.getLogger("dydx_ws.notebook")

_Site = Tuple[str, int]  # (cell identity, line)
_lock = threading.Lock()
_clients: weakref.WeakKeyDictionary[Any, Tuple[_Site, int]] = weakref.WeakKeyDictionary()
_all: weakref.WeakSet[Any] = weakref.WeakSet()


def _shell() -> Any:
    """The running IPython shell, or None (never imports IPython itself)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    get = getattr(ipython, "get_ipython", None)
    return get() if get is not None else None


def _call_site() -> Optional[Tuple[str, int]]:
    """(code name, line) of the first frame outside the dydx_ws package."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module == "dydx_ws" or module.startswith("dydx_ws.")):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _cell_id(shell: Any) -> Optional[str]:
    header = getattr(shell, "parent_header", None)
    if isinstance(header, dict):
        meta = header.get("metadata")
        if isinstance(meta, dict):
            cell = meta.get("cellId")
            if isinstance(cell, str) and cell:
                return cell
    return None


def track(client: DydxWebSocketClient, *, stop_timeout: float = 5.0) -> None:
    """Register ``client`` as created by the current notebook cell, and stop the clients that
    the same cell created in earlier executions. A no-op outside IPython."""
    shell = _shell()
    with _lock:
        _all.add(client)
    if shell is None:
        return
    site = _call_site()
    if site is None:
        return
    code_name, line = site
    cell = _cell_id(shell)
    key: _Site = (f"cell:{cell}" if cell else f"code:{code_name}", line)
    execution = int(getattr(shell, "execution_count", 0) or 0)
    with _lock:
        old = [
            c for c, (k, n) in _clients.items() if k == key and n != execution and c is not client
        ]
        for c in old:
            _clients.pop(c, None)
        _clients[client] = (key, execution)
    for c in old:
        log.info("stopping %r: its cell was run again", c)
        c.stop(stop_timeout)


def is_tracked(client: DydxWebSocketClient) -> bool:
    """True if :func:`track` registered ``client`` as made by a notebook cell."""
    with _lock:
        return client in _clients


def stop_all(timeout: float = 5.0) -> int:
    """Stop every client created in this process that is still alive; returns how many."""
    with _lock:
        clients = list(_all)
    stopped = 0
    for c in clients:
        if c.state != "stopped":
            c.stop(timeout)
            stopped += 1
    return stopped


def _age(seconds: Optional[float]) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


SUBSCRIPTION_ROWS = 20  # more subscriptions than this: one row per channel instead of each


def _short(channel: str) -> str:
    spec = CHANNEL_TABLE.get(channel)
    return spec.short if spec is not None else channel


def _table(head: List[str], rows: List[List[str]]) -> str:
    """A compact HTML table; the first column is left-aligned, the others right-aligned."""
    left = "style='text-align:left'"
    th = "".join(f"<th {left if i == 0 else ''}>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>"
        + "".join(f"<td {left if i == 0 else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return (
        "<table style='font-size:12px;border-collapse:collapse'>"
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
    )


def _subscriptions_html(subs: Dict[str, Dict[str, Any]]) -> str:
    """One row per subscription, or per channel when there are more than
    ``SUBSCRIPTION_ROWS`` (hundreds of markets)."""
    esc = html.escape
    if not subs:
        return "<p><i>no subscriptions</i></p>"
    if len(subs) <= SUBSCRIPTION_ROWS:
        rows = [
            [
                esc(name),
                esc(str(sub.get("state"))),
                str(sub.get("messages", 0)),
                _age(sub.get("age_seconds")),
                str(sub.get("drops", 0)),
            ]
            for name, sub in sorted(subs.items())
        ]
        return _table(["subscription", "state", "messages", "last", "drops"], rows)
    per: Dict[str, Dict[str, Any]] = {}
    for name, sub in subs.items():
        row = per.setdefault(name.split("/", 1)[0], {"n": 0, "active": 0, "msgs": 0, "drops": 0})
        row["n"] += 1
        row["active"] += sub.get("state") == "active"
        row["msgs"] += sub.get("messages", 0)
        row["drops"] += sub.get("drops", 0)
        age = sub.get("age_seconds")
        if age is not None and (row.get("age") is None or age < row["age"]):
            row["age"] = age
    rows = [
        [
            esc(ch),
            str(r["n"]),
            str(r["active"]),
            str(r["msgs"]),
            _age(r.get("age")),
            str(r["drops"]),
        ]
        for ch, r in sorted(per.items())
    ]
    return _table(["channel", "subscriptions", "active", "messages", "last", "drops"], rows)


def _short_id(cid: Optional[str]) -> str:
    """A server connection id (a UUID) cut to its first 8 characters; the full id on hover."""
    if not cid:
        return "—"
    text = str(cid)
    short = text if len(text) <= 9 else text[:8] + "…"
    return f"<span title='{html.escape(text)}'>{html.escape(short)}</span>"


def _pool_html(stats: Dict[str, Any]) -> str:
    """The connection pool: one row per connection and the subscriptions per channel in all."""
    conns: List[Dict[str, Any]] = list(stats.get("connections") or [])
    totals: Dict[str, int] = {}
    rows = []
    for c in conns:
        per = c.get("subscriptions") or {}
        for ch, n in per.items():
            totals[ch] = totals.get(ch, 0) + n
        rows.append(
            [
                str(c.get("index")),
                html.escape(str(c.get("state"))),
                _short_id(c.get("id")),
                html.escape(" ".join(f"{_short(ch)} {n}" for ch, n in sorted(per.items())) or "—"),
                str(c.get("frames", 0)),
                _age(c.get("last_message_age")),
                str(c.get("reconnects", 0)),
            ]
        )
    head = ["#", "state", "id", "subscriptions", "frames", "last", "reconnects"]
    total = ", ".join(f"{_short(ch)} {n}" for ch, n in sorted(totals.items())) or "none"
    summary = (
        f"{len(conns)} connection{'' if len(conns) == 1 else 's'} · subscriptions {total} · "
        f"opened {stats.get('connections_opened', 0)}, closed "
        f"{stats.get('connections_closed', 0)}, moves {stats.get('subscription_moves', 0)}"
    )
    return f"<div style='color:#666'>{html.escape(summary)}</div>{_table(head, rows)}"


def status_html(client: DydxWebSocketClient) -> str:
    """An HTML status card: network, state, subscriptions (state, messages, age; per channel
    when there are many), the connection pool (one row per connection), counters and queue
    depth. Reads only ``client.stats()`` and public attributes."""
    stats: Dict[str, Any] = client.stats()
    state = client.state
    color = {"connected": "#1a7f37", "connecting": "#b35900"}.get(state, "#888")
    esc = html.escape
    counters = ", ".join(
        f"{k.replace('_', ' ')} {stats.get(k, 0)}"
        for k in ("frames", "reconnects", "dropped", "callback_errors", "decode_errors")
    )
    return (
        "<div style='border:1px solid #ccc;border-radius:6px;padding:8px 12px;"
        "display:inline-block;font-family:sans-serif;font-size:13px'>"
        f"<div><b>DydxWebSocketClient</b> · {esc(client.network.name)} · "
        f"<span style='color:{color};font-weight:bold'>● {state}</span></div>"
        f"<div style='color:#666'>{esc(str(stats.get('url', '')))}</div>"
        f"{_subscriptions_html(stats.get('subscriptions', {}))}"
        f"{_pool_html(stats)}"
        f"<div style='color:#666'>{esc(counters)} · queue depth {stats.get('queue_depth', 0)} · "
        f"updated {time.strftime('%H:%M:%S')}</div>"
        "</div>"
    )
