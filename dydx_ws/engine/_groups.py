"""Subscription groups: one market channel for many markets, or for every market.

``subscribe_orderbook``/``subscribe_trades``/``subscribe_candles`` given a list of tickers or
``ALL_MARKETS`` return a :class:`SubscriptionGroup` of one :class:`Subscription` per market (the
connection pool, ``engine/_pool.py``, spreads them over as many connections as needed).

``ALL_MARKETS`` follows the markets channel (the group holds a ``v4_markets`` subscription of its
own): the snapshot sets the membership, every market but those in ``FINAL_SETTLEMENT``; a market
that appears later is subscribed, one that goes to ``FINAL_SETTLEMENT`` (or is missing from a
later snapshot) is unsubscribed, each reported as a ``group`` event (:class:`GroupEvent`). The
server checks tickers against a market list it refreshes every few minutes, so a just-listed
market can be refused at first (docs/protocol.md §3): such a member is retried every
``RETRY_INTERVAL`` seconds while the group lives.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional

from ..errors import DydxWsError, SubscriptionError
from ..events import GroupEvent
from ..models import MarketStatus
from ..protocol._messages import MarketsMessage
from ._subscriptions import Subscription, SubscriptionState

__all__ = ["ALL_MARKETS", "AllMarkets", "SubscriptionGroup"]

log = logging.getLogger("dydx_ws.engine._groups")

RETRY_INTERVAL = 30.0  # seconds between two subscribes of a member the server refused
_GONE = MarketStatus.FINAL_SETTLEMENT


class AllMarkets:
    """The type of :data:`ALL_MARKETS`."""

    _instance: Optional[AllMarkets] = None

    def __new__(cls) -> AllMarkets:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ALL_MARKETS"


#: Pass to ``subscribe_orderbook``/``subscribe_trades``/``subscribe_candles`` for every market.
ALL_MARKETS = AllMarkets()


class SubscriptionGroup:
    """The subscriptions of one channel for many markets: ``members`` (ticker -> handle),
    ``wait_subscribed(timeout)``, ``unsubscribe()``. Thread-safe; iterating gives the handles."""

    def __init__(
        self,
        channel: str,
        subscribe: Callable[[str], Subscription],
        emit: Callable[[GroupEvent], None],
        *,
        tickers: Optional[List[str]] = None,
        follow: Optional[Callable[[Callable[[MarketsMessage], None]], Subscription]] = None,
    ) -> None:
        self.channel = channel
        self._subscribe = subscribe
        self._emit = emit
        self._lock = threading.RLock()
        self._members: Dict[str, Subscription] = {}
        self._retry_at: Dict[str, float] = {}  # refused member -> when to subscribe it again
        self._closed = False
        self._known = threading.Event()  # membership known (at once for a list)
        self._markets: Optional[Subscription] = None
        if follow is not None:
            self._markets = follow(self._on_markets)
            return
        try:  # a list: every member now, or none (the error is the caller's)
            for ticker in tickers or []:
                self._members[ticker] = subscribe(ticker)
        except BaseException:
            self.unsubscribe()
            raise
        self._known.set()

    # -- the user's side ----------------------------------------------------------------------
    @property
    def follows_markets(self) -> bool:
        """True for ``ALL_MARKETS`` (membership follows listings and delistings)."""
        return self._markets is not None

    @property
    def members(self) -> Dict[str, Subscription]:
        """Ticker -> its subscription (a copy)."""
        with self._lock:
            return dict(self._members)

    @property
    def tickers(self) -> List[str]:
        with self._lock:
            return list(self._members)

    @property
    def states(self) -> Dict[str, SubscriptionState]:
        """Ticker -> the state of its subscription."""
        with self._lock:
            return {t: s.state for t, s in self._members.items()}

    @property
    def failed(self) -> Dict[str, SubscriptionError]:
        """Members the server refused (ticker -> the error); refused ones are retried."""
        with self._lock:
            return {t: s.error for t, s in self._members.items() if s.error is not None}

    def wait_subscribed(self, timeout: Optional[float] = None) -> bool:
        """Block until every member is confirmed and its snapshot applied (for ``ALL_MARKETS``,
        once the markets snapshot set the membership): True; False on timeout or after
        :meth:`unsubscribe`. Raises :class:`~dydx_ws.SubscriptionError` naming the members
        that failed (its ``__cause__`` is the first one's error)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._markets is not None:
            if not self._markets.wait_subscribed(_left(deadline)):
                return False
            if not self._known.wait(_left(deadline)):
                return False
        for member in self.members.values():
            try:
                if not member.wait_subscribed(_left(deadline)):
                    return False
            except SubscriptionError as exc:
                self._raise_failed(exc)
        return not self._closed

    def _raise_failed(self, caught: SubscriptionError) -> None:
        failed = self.failed or {caught.id or self.channel: caught}  # a retry replaced it
        names = ", ".join(sorted(failed))
        first = next(iter(failed.values()))
        error = SubscriptionError(
            f"{len(failed)} of {len(self)} {self.channel} subscriptions failed: {names} "
            f"(first: {first})",
            channel=self.channel,
        )
        raise error from first

    def unsubscribe(self) -> None:
        """End every member (and, for ``ALL_MARKETS``, stop following the markets). Idempotent;
        safe from callbacks."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            members, self._members = list(self._members.values()), {}
            self._retry_at.clear()
        if self._markets is not None:
            self._markets.unsubscribe()
        for member in members:
            member.unsubscribe()
        self._known.set()

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(self.members.values())

    def __contains__(self, ticker: object) -> bool:
        return ticker in self._members

    def __getitem__(self, ticker: str) -> Subscription:
        with self._lock:
            return self._members[ticker]

    def __repr__(self) -> str:
        states = self.states
        active = sum(1 for s in states.values() if s is SubscriptionState.ACTIVE)
        what = "ALL_MARKETS" if self.follows_markets else f"{len(states)} markets"
        return f"<SubscriptionGroup {self.channel} {what}: {active}/{len(states)} active>"

    # -- membership ---------------------------------------------------------------------------
    def _join(self, ticker: str, reason: Optional[str] = None) -> None:
        """Subscribe ``ticker`` (lock held); ``reason`` set: reported as a ``group`` event."""
        try:
            self._members[ticker] = self._subscribe(ticker)
        except (SubscriptionError, DydxWsError, ValueError) as exc:
            # e.g. the pool's cap, or a ticker this SDK cannot subscribe to: retried later
            log.warning("%s %s: %s", self.channel, ticker, exc)
            self._retry_at[ticker] = time.monotonic() + RETRY_INTERVAL
            self._emit(GroupEvent(self.channel, ticker, False, f"could not subscribe: {exc}"))
            return
        if reason is not None:
            self._emit(GroupEvent(self.channel, ticker, True, reason))

    def _leave(self, ticker: str, reason: str) -> None:
        member = self._members.pop(ticker, None)
        self._retry_at.pop(ticker, None)
        if member is not None:
            member.unsubscribe()
            self._emit(GroupEvent(self.channel, ticker, False, reason))

    def _on_markets(self, msg: MarketsMessage) -> None:
        """A markets frame (a worker thread): reconcile the membership with the listings."""
        with self._lock:
            if self._closed:
                return
            if msg.is_snapshot:
                self._on_snapshot(msg)
            else:
                for diff in msg.trading:
                    ticker = diff.ticker
                    if ticker is None:
                        continue
                    if diff.status is _GONE:
                        if ticker in self._members:
                            self._leave(ticker, f"status {_GONE.value}")
                    elif (
                        ticker not in self._members
                        and ticker not in self._retry_at
                        and (diff.status is not None or diff.clob_pair_id is not None)
                    ):
                        self._join(ticker, "listed")  # a full trading object: a new market
            self._retry_refused(time.monotonic())
        self._known.set()

    def _on_snapshot(self, msg: MarketsMessage) -> None:
        listed = {t for t, m in msg.markets.items() if m.status is not _GONE}
        first = not self._known.is_set()
        for ticker in sorted(listed - set(self._members) - set(self._retry_at)):
            self._join(ticker, None if first else "listed")
        for ticker in [t for t in self._members if t not in listed]:
            gone = msg.markets.get(ticker)
            self._leave(ticker, f"status {_GONE.value}" if gone else "not in the markets list")

    def _retry_refused(self, now: float) -> None:
        """Members the server refused (or that could not be subscribed) are tried again."""
        for ticker, member in self._members.items():
            if member.state is SubscriptionState.FAILED and ticker not in self._retry_at:
                self._retry_at[ticker] = now + RETRY_INTERVAL
        for ticker, due in list(self._retry_at.items()):
            if due > now:
                continue
            del self._retry_at[ticker]
            old = self._members.pop(ticker, None)
            if old is not None and old.state is not SubscriptionState.FAILED:
                self._members[ticker] = old  # it recovered meanwhile
                continue
            if old is not None:
                old.unsubscribe()
            self._join(ticker, "retried")


def _left(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
