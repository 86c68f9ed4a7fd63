"""The client's connection pool in one line or one JSON-ready dict: the footer of the market
tables (``book``/``watch`` with several markets) and part of the ``relay`` and ``demo`` status.
Reads only ``client.stats()``."""

from __future__ import annotations

from typing import Any, Dict, List

from . import _common as common

__all__ = ["pool_line", "pool_summary"]


def pool_summary(stats: Dict[str, Any]) -> Dict[str, Any]:
    """Connections (open, connected), subscriptions per channel over every connection, frames,
    reconnects, and the pool's opened/closed/moved counters."""
    conns: List[Dict[str, Any]] = list(stats.get("connections") or [])
    per_channel: Dict[str, int] = {}
    for conn in conns:
        for channel, n in (conn.get("subscriptions") or {}).items():
            per_channel[channel] = per_channel.get(channel, 0) + int(n)
    return {
        "connections": len(conns),
        "connected": sum(1 for c in conns if c.get("state") == "connected"),
        "subscriptions": dict(sorted(per_channel.items())),
        "frames": int(stats.get("frames", 0)),
        "reconnects": int(stats.get("reconnects", 0)),
        "opened": int(stats.get("connections_opened", 0)),
        "closed": int(stats.get("connections_closed", 0)),
        "moves": int(stats.get("subscription_moves", 0)),
    }


def pool_line(stats: Dict[str, Any]) -> str:
    """E.g. ``pool: 2 connections (2 connected) · subscriptions orderbook 40, markets 1 ·
    frames 1,234 · reconnects 0``."""
    s = pool_summary(stats)
    n = s["connections"]
    subs = ", ".join(f"{common.SHORT.get(ch, ch)} {k}" for ch, k in s["subscriptions"].items())
    return (
        f"pool: {n} connection{'' if n == 1 else 's'} ({s['connected']} connected) · "
        f"subscriptions {subs or 'none'} · frames {s['frames']:,} · reconnects {s['reconnects']}"
    )
