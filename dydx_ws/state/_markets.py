"""Local state of every perpetual market, kept from ``v4_markets`` frames (docs/protocol.md §3.1).

Job: merge the markets snapshot with the streamed ``trading`` diffs (only changed fields are set;
``None`` means unchanged) and oracle prices into one ``ticker -> PerpetualMarket`` map.

Copy-on-write: the published map and the market objects in it are never mutated. Each applied
frame builds a new dict (and, for changed markets, new objects with ``dataclasses.replace``) and
publishes it with one reference assignment, so a reader holding a map or a market always sees a
consistent one without taking a lock. Writers (the worker thread, or a REST resync from another
thread) are serialised by a lock.

:class:`MarketsState` also answers ``oracle_price(ticker)`` and ``initial_margin_fraction(ticker)``:
it is a :class:`~dydx_ws.state._accounts.MarketDataSource` for live equity of subaccounts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from decimal import Decimal
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from ..models import PerpetualMarket, TradingMarketUpdate
from ..protocol._messages import MarketsMessage

__all__ = ["MarketsState"]

logger = logging.getLogger("dydx_ws.state")

_MARKET_FIELDS = {f.name for f in dataclasses.fields(PerpetualMarket)}
# Fields a trading diff can change on a market (the diff's ``id`` is not a market field).
_DIFF_FIELDS: Tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(TradingMarketUpdate)
    if f.name in _MARKET_FIELDS and f.name != "ticker"
)


def _changes(diff: TradingMarketUpdate) -> Dict[str, Any]:
    return {name: v for name in _DIFF_FIELDS if (v := getattr(diff, name)) is not None}


class MarketsState:
    """``ticker -> PerpetualMarket``: the markets snapshot merged with updates, copy-on-write.

    * A snapshot (``subscribed``) or :meth:`replace_all` (REST resync) replaces the whole map.
    * A ``trading`` diff merges field by field into the known market (fields that are None in the
      diff are unchanged); an unknown ticker creates the market from the diff.
    * An oracle price sets ``oracle_price`` (creating a bare market for an unknown ticker).
    """

    def __init__(self) -> None:
        self._write_lock = threading.Lock()
        self._markets: Dict[str, PerpetualMarket] = {}  # published: never mutated
        self._has_snapshot = False
        self._last_message_id: Optional[int] = None
        self._updated_at: Optional[float] = None

    # ---------------------------------------------------------------- writing

    def apply(self, msg: MarketsMessage) -> None:
        """Apply one decoded ``v4_markets`` frame."""
        if msg.is_snapshot:
            self._publish(dict(msg.markets), msg.message_id, snapshot=True)
            return
        with self._write_lock:
            markets = dict(self._markets)
            for diff in msg.trading:
                ticker = diff.ticker
                if ticker is None:
                    logger.warning("v4_markets trading diff without ticker ignored: %r", diff)
                    continue
                changes = _changes(diff)
                known = markets.get(ticker)
                if known is None:
                    markets[ticker] = PerpetualMarket(ticker=ticker, **changes)
                elif changes:
                    markets[ticker] = dataclasses.replace(known, **changes)
            for op in msg.oracle_prices:
                if op.ticker is None:
                    logger.warning("v4_markets oracle price without ticker ignored: %r", op)
                    continue
                known = markets.get(op.ticker)
                markets[op.ticker] = (
                    PerpetualMarket(ticker=op.ticker, oracle_price=op.oracle_price)
                    if known is None
                    else dataclasses.replace(known, oracle_price=op.oracle_price)
                )
            self._set(markets, msg.message_id)

    def replace_all(self, markets: Mapping[str, PerpetualMarket]) -> None:
        """Replace every market (a REST ``GET /v4/perpetualMarkets`` resync)."""
        self._publish(dict(markets), None, snapshot=True)

    def _publish(
        self, markets: Dict[str, PerpetualMarket], message_id: Optional[int], *, snapshot: bool
    ) -> None:
        with self._write_lock:
            self._set(markets, message_id)
            self._has_snapshot = self._has_snapshot or snapshot

    def _set(self, markets: Dict[str, PerpetualMarket], message_id: Optional[int]) -> None:
        self._markets = markets  # one reference assignment: readers see old or new, never half
        if message_id is not None:
            self._last_message_id = message_id
        self._updated_at = time.time()

    # ---------------------------------------------------------------- reading (any thread)

    def snapshot(self) -> Dict[str, PerpetualMarket]:
        """A new dict of every market (the objects are shared and never mutated by the SDK)."""
        return dict(self._markets)

    def get(self, ticker: str) -> Optional[PerpetualMarket]:
        return self._markets.get(ticker)

    def __getitem__(self, ticker: str) -> PerpetualMarket:
        return self._markets[ticker]

    def __contains__(self, ticker: object) -> bool:
        return ticker in self._markets

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._markets))

    def __len__(self) -> int:
        return len(self._markets)

    def oracle_price(self, ticker: str) -> Optional[Decimal]:
        """The market's latest oracle price, None if unknown."""
        market = self._markets.get(ticker)
        return None if market is None else market.oracle_price

    def initial_margin_fraction(self, ticker: str) -> Optional[Decimal]:
        """The market's initial margin fraction, None if unknown."""
        market = self._markets.get(ticker)
        return None if market is None else market.initial_margin_fraction

    @property
    def has_snapshot(self) -> bool:
        """True once a snapshot or a REST resync was applied."""
        return self._has_snapshot

    @property
    def last_message_id(self) -> Optional[int]:
        return self._last_message_id

    @property
    def updated_at(self) -> Optional[float]:
        """``time.time()`` of the last applied frame or resync."""
        return self._updated_at

    def __repr__(self) -> str:
        return f"MarketsState({len(self._markets)} markets, snapshot={self._has_snapshot})"
