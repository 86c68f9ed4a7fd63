"""Local state kept from the stream: markets (:mod:`.markets`) and subaccounts (:mod:`.accounts`).

Order books live in :mod:`dydx_ws.orderbook`. Every class here follows one contract: a single
writer (the worker thread that owns the subscription, or a REST resync) and any number of reader
threads, which always get a consistent view and never half of an applied frame.
"""

from .accounts import (
    CallableMarketData,
    MarketDataSource,
    ParentSubaccountState,
    SubaccountState,
    SubaccountView,
)
from .markets import MarketsState

__all__ = [
    "CallableMarketData",
    "MarketDataSource",
    "MarketsState",
    "ParentSubaccountState",
    "SubaccountState",
    "SubaccountView",
]
