"""Trade back-fill: the trades a gap (reconnect, resync) hid from a ``backfill=True`` trades
subscription, delivered in order and deduplicated before the new snapshot.

Trade ids are ``uint32 height ‖ uint32 tx ‖ uint32 event`` as 24 hex digits (docs/protocol.md §3.2),
so their text order is their chronological order. The filler remembers the newest id delivered;
when a new snapshot arrives after one was already seen, every trade newer than that id is missing
from the live stream. The snapshot (up to 1000 newest trades) usually covers the gap; when it does
not reach back far enough, REST pages (``createdBeforeOrAtHeight``) fill the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import deque
from typing import Deque, Dict, List, Optional, Set

from ..models import Trade
from ..protocol._messages import TradesMessage
from ..rest import IndexerRestClient

__all__ = ["TradeBackfill"]

log = logging.getLogger("dydx_ws.state._backfill")

_EVENT_ID = re.compile(r"[0-9a-f]{24}")
_REMEMBER = 5000  # ids kept for de-duplication


def _is_event_id(trade_id: str) -> bool:
    return _EVENT_ID.fullmatch(trade_id) is not None


class TradeBackfill:
    """Per-subscription state; used on the subscription's worker only (no locking).

    Ids that are not 24 lowercase hex digits have no usable order: for them, "missing" means
    "not among the last ``_REMEMBER`` ids delivered", and REST paging is not attempted.
    """

    def __init__(self, ticker: str, rest: Optional[IndexerRestClient]) -> None:
        self._ticker = ticker
        self._rest = rest
        self._delivered = False  # a message was seen: the next snapshot follows a gap
        self._last_id: Optional[str] = None  # newest event id delivered (hex ids only)
        self._seen: Set[str] = set()
        self._order: Deque[str] = deque()  # _seen in insertion order, for eviction
        self.backfilled = 0

    def before_delivery(self, msg: TradesMessage) -> Optional[TradesMessage]:
        """Called with every message of the subscription; returns the back-fill message to deliver
        first (after a gap), or None."""
        extra = None
        if msg.is_snapshot and self._delivered:
            missing = self._missing(msg)
            if missing:
                self.backfilled += len(missing)
                extra = dataclasses.replace(
                    msg,
                    type="channel_data",
                    is_snapshot=False,
                    trades=missing,
                    backfilled=True,
                )
        self._delivered = True
        for trade in msg.trades:
            self._remember(trade.id)
        return extra

    def _is_new(self, trade_id: str) -> bool:
        last = self._last_id
        if last is not None and _is_event_id(trade_id):
            return trade_id > last
        return trade_id not in self._seen

    def _missing(self, snapshot: TradesMessage) -> List[Trade]:
        """The trades newer than the last delivered one: from the snapshot, and from REST when
        the snapshot does not reach back to it. Oldest first, each id once."""
        found: Dict[str, Trade] = {t.id: t for t in snapshot.trades if self._is_new(t.id)}
        last = self._last_id
        ordered = [t for t in snapshot.trades if _is_event_id(t.id)]
        if last is not None and self._rest is not None and ordered:
            oldest = min(ordered, key=lambda t: t.id)
            if oldest.id > last and oldest.created_at_height is not None:
                # The gap is longer than the snapshot: page back to the last trade delivered.
                try:
                    for trade in self._rest.iter_trades(
                        self._ticker,
                        start_height=oldest.created_at_height,
                        until=int(last[:8], 16),
                    ):
                        if self._is_new(trade.id):
                            found.setdefault(trade.id, trade)
                except Exception as exc:  # deliver what the snapshot has; say what is missing
                    log.warning("trade back-fill for %s incomplete: %s", self._ticker, exc)
        return sorted(found.values(), key=lambda t: t.id)

    def _remember(self, trade_id: str) -> None:
        if _is_event_id(trade_id) and (self._last_id is None or trade_id > self._last_id):
            self._last_id = trade_id
        if trade_id in self._seen:
            return
        self._seen.add(trade_id)
        self._order.append(trade_id)
        if len(self._order) > _REMEMBER:
            self._seen.discard(self._order.popleft())
