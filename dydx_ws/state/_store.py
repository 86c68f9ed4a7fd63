"""The client's local state per subscription: order books, markets, subaccounts, trade back-fill.

Created when a subscription starts and dropped when it ends; each message is applied on the
subscription's worker thread (the only writer), and readers on any thread get consistent views
from the state classes themselves (:mod:`dydx_ws.state._orderbook`, :mod:`dydx_ws.state`).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

from ..protocol._channels import ORDERBOOK, PARENT_SUBACCOUNTS, SUBACCOUNTS, Topic, channel
from ..protocol._messages import (
    BlockHeightMessage,
    MarketsMessage,
    Message,
    OrderbookMessage,
    SubaccountMessage,
)
from ..rest import IndexerRestClient
from . import MarketsState, ParentSubaccountState, SubaccountState
from ._backfill import TradeBackfill
from ._orderbook import OrderBook

__all__ = ["LocalState"]

Key = Tuple[str, Optional[str]]
Account = Union[SubaccountState, ParentSubaccountState]
# The channels whose subscriptions keep an account view, by their id (ADDRESS/NUMBER).
_ACCOUNT_CHANNELS = frozenset((SUBACCOUNTS, PARENT_SUBACCOUNTS))


class LocalState:
    """Books by ticker, the markets, accounts by subscription key, back-fillers, block lag."""

    def __init__(self, uncross: str) -> None:
        OrderBook("CHECK-USD", uncross=uncross)  # validates the policy name now, not later
        self._uncross = uncross
        self.books: Dict[str, OrderBook] = {}
        self.markets = MarketsState()
        self.accounts: Dict[Key, Account] = {}
        self.backfill: Dict[Key, TradeBackfill] = {}
        self.lag: Dict[Key, float] = {}

    def create(self, topic: Topic) -> None:
        """State for a new subscription (kept if it already exists)."""
        name, sid = topic.key
        if name == ORDERBOOK and sid is not None and sid not in self.books:
            book = OrderBook(sid, uncross=self._uncross)
            book.mark_stale()  # nothing is known until its first snapshot
            self.books[sid] = book
        elif name in _ACCOUNT_CHANNELS and sid is not None:
            if topic.key in self.accounts:
                return
            params = channel(name).parse_id(sid)
            address, number = params["address"], params["subaccount_number"]
            state: Account
            if name == SUBACCOUNTS:
                state = SubaccountState(address, number)
            else:
                state = ParentSubaccountState(address, number)
            state.set_price_source(self.markets)  # live equity from oracle prices
            self.accounts[topic.key] = state

    def add_backfill(self, key: Key, ticker: str, rest: Optional[IndexerRestClient]) -> None:
        self.backfill.setdefault(key, TradeBackfill(ticker, rest))

    def drop(self, key: Key) -> None:
        """Forget the state of a subscription that ended."""
        if key[0] == ORDERBOOK:
            self.books.pop(key[1] or "", None)
        self.accounts.pop(key, None)
        self.backfill.pop(key, None)
        self.lag.pop(key, None)

    def mark_books_stale(self, key: Optional[Key] = None) -> None:
        """Every book (or the one of an order book ``key``) is stale until its next snapshot
        replaces it."""
        if key is None:
            books = list(self.books.values())
        elif key[0] == ORDERBOOK and (key[1] or "") in self.books:
            books = [self.books[key[1] or ""]]
        else:
            return
        for book in books:
            book.mark_stale()

    def apply(self, key: Key, msg: Message) -> int:
        """Apply one message of subscription ``key`` (worker thread); returns how many crossed
        level pairs the order book's uncross resolved (levels it removed or reduced)."""
        if isinstance(msg, OrderbookMessage):
            book = self.books.get(key[1] or "")
            if book is not None:
                crossed = book.crossed
                book.apply(msg)
                msg.book = book
                return book.crossed - crossed
        elif isinstance(msg, MarketsMessage):
            self.markets.apply(msg)
        elif isinstance(msg, SubaccountMessage):
            account = self.accounts.get(key)
            if account is not None:
                account.apply(msg)
        elif isinstance(msg, BlockHeightMessage):
            self.lag[key] = msg.received_at - msg.time.timestamp()
        return 0
