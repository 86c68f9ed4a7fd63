"""Local state kept from the stream: order books (:mod:`._orderbook`), markets (:mod:`._markets`),
subaccounts (:mod:`._accounts`), the per-subscription store (:mod:`._store`) and trade back-fill
(:mod:`._backfill`). Every class here follows one contract: a single writer (the worker thread
that owns the subscription, or a REST resync) and any number of reader threads, which always get
a consistent view and never half of an applied frame.
"""

from ._accounts import (
    CallableMarketData,
    MarketDataSource,
    ParentSubaccountState,
    SubaccountState,
    SubaccountView,
)
from ._markets import MarketsState

__all__ = [
    "CallableMarketData",
    "MarketDataSource",
    "MarketsState",
    "ParentSubaccountState",
    "SubaccountState",
    "SubaccountView",
]
