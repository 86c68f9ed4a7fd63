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


def status_html(client: DydxWebSocketClient) -> str:
    """An HTML status card: network, connection state, subscriptions (state, messages, age),
    counters and queue depth. Reads only ``client.stats()`` and public attributes."""
    stats: Dict[str, Any] = client.stats()
    state = client.state
    color = {"connected": "#1a7f37", "connecting": "#b35900"}.get(state, "#888")
    esc = html.escape
    rows: List[str] = []
    for name, sub in sorted(stats.get("subscriptions", {}).items()):
        rows.append(
            "<tr>"
            f"<td style='text-align:left'>{esc(name)}</td><td>{esc(str(sub.get('state')))}</td>"
            f"<td>{sub.get('messages', 0)}</td><td>{_age(sub.get('age_seconds'))}</td>"
            f"<td>{sub.get('drops', 0)}</td></tr>"
        )
    subs = (
        "<table><thead><tr><th style='text-align:left'>subscription</th><th>state</th>"
        "<th>messages</th><th>last</th><th>drops</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p><i>no subscriptions</i></p>"
    )
    counters = ", ".join(
        f"{k.replace('_', ' ')} {stats.get(k, 0)}"
        for k in ("frames", "reconnects", "dropped", "callback_errors", "decode_errors")
    )
    cid = stats.get("connection_id")
    conn = f" · connection {esc(str(cid))}" if cid else ""
    return (
        "<div style='border:1px solid #ccc;border-radius:6px;padding:8px 12px;"
        "display:inline-block;font-family:sans-serif;font-size:13px'>"
        f"<div><b>DydxWebSocketClient</b> · {esc(client.network.name)} · "
        f"<span style='color:{color};font-weight:bold'>● {state}</span></div>"
        f"<div style='color:#666'>{esc(str(stats.get('url', '')))}"
        f"{conn}"
        "</div>"
        f"{subs}"
        f"<div style='color:#666'>{esc(counters)} · queue depth {stats.get('queue_depth', 0)} · "
        f"updated {time.strftime('%H:%M:%S')}</div>"
        "</div>"
    )
