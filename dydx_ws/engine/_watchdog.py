"""Idle watchdog: re-subscribe a subscription the server silently stopped feeding.

Why: since mid-2025 the server stops publishing to a subscriber after a send error on its side
and tells nobody: the subscription stays registered, the connection stays up, pings are answered,
and the local state quietly ages (docs/protocol.md §4.11). Only channels that must move
are watched:

- ``v4_block_height``: a message every block. Judged by time (default 30 s of silence).
- ``v4_markets``: oracle prices nearly every block.
- ``v4_orderbook`` and ``v4_trades`` of markets that are ``ACTIVE`` (or not known yet).

Candles and subaccounts legitimately stay silent for long and are not watched.

How silence is measured: when the client has an active ``v4_block_height`` subscription that is
itself moving, the block is the clock: each of its messages is one block, and a watched
subscription is idle once that many blocks passed without a message of its own
(:attr:`IdleLimit.blocks`), so a slow chain never triggers it. Without that clock, a conservative
time (:attr:`IdleLimit.seconds`) applies. Arrivals are counted on the I/O thread as frames come
in, so a slow callback never looks like silence.

An idle subscription is re-subscribed (unsubscribe + subscribe: a fresh snapshot replaces the
local state), counted in ``stats()["idle_resyncs"]`` (and ``"resubscribes"``) and reported through
``on("resync")`` with a :class:`~dydx_ws.ResyncEvent` whose ``reason`` says why. Runs on the
I/O thread (``tick``), only while connected; per-channel limits are configurable and the whole
watchdog can be disabled (``idle_limits=None`` on the client).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Dict, Mapping, Optional, Tuple

from ..models import MarketStatus
from ..protocol._channels import BLOCK_HEIGHT, CHANNELS, MARKETS, ORDERBOOK, TRADES, frame_id
from ..state import MarketsState
from ..state._store import Key
from ._subscriptions import SubscriptionRegistry, SubscriptionState

__all__ = ["DEFAULT_IDLE_LIMITS", "IdleLimit", "IdleWatchdog"]

log = logging.getLogger("dydx_ws.engine._watchdog")

BLOCK_CLOCK_KEY: Key = (BLOCK_HEIGHT, frame_id(BLOCK_HEIGHT, None))


@dataclass(frozen=True)
class IdleLimit:
    """How long a subscription of one channel may stay silent: ``blocks`` while the block clock
    runs (None: not judged by blocks), else ``seconds`` (None: not judged by time)."""

    blocks: Optional[int] = None
    seconds: Optional[float] = None

    def __post_init__(self) -> None:
        if self.blocks is not None and self.blocks < 1:
            raise ValueError("IdleLimit.blocks must be >= 1 or None")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError("IdleLimit.seconds must be > 0 or None")


DEFAULT_IDLE_LIMITS: Mapping[str, IdleLimit] = MappingProxyType(
    {
        BLOCK_HEIGHT: IdleLimit(seconds=30.0),
        MARKETS: IdleLimit(blocks=30, seconds=120.0),
        ORDERBOOK: IdleLimit(blocks=60, seconds=600.0),
        TRADES: IdleLimit(blocks=600, seconds=1800.0),
    }
)


@dataclass
class _Track:
    arrivals: int  # the entry's wire message count when last seen changing
    since: float  # monotonic time of that change
    block: int  # block clock reading at that change


class IdleWatchdog:
    """Per-subscription silence tracking and the re-subscribe of idle ones (I/O thread only)."""

    def __init__(
        self,
        registry: SubscriptionRegistry,
        markets: MarketsState,
        limits: Mapping[str, IdleLimit],
    ) -> None:
        self._registry = registry
        self._markets = markets
        self._limits = dict(limits)
        self._tracks: Dict[Key, _Track] = {}
        self._next_check = 0.0
        shortest = min((x.seconds for x in self._limits.values() if x.seconds), default=4.0)
        self._period = max(0.05, min(1.0, shortest / 4))
        self.resubscribes = 0

    def reset(self) -> None:
        """The connection went down: silence restarts with the next connection."""
        self._tracks.clear()

    def tick(self, now: float, connected: bool, resubscribe: Callable[[Key, str], bool]) -> None:
        """Look for idle subscriptions (at most every ``_period``); ``resubscribe(key, reason)``
        re-subscribes one and returns False if it did not (the topic ended)."""
        if now < self._next_check:
            return
        self._next_check = now + self._period
        if not connected:
            self._tracks.clear()
            return
        clock = self._block_clock(now)
        for topic in self._registry.topics():
            key = topic.key
            limit = self._limits.get(key[0])
            entry = self._registry.get(key)
            if limit is None or entry is None or entry.state is not SubscriptionState.ACTIVE:
                self._tracks.pop(key, None)
                continue
            track = self._tracks.get(key)
            block = clock if clock is not None else 0
            if track is None or entry.arrivals != track.arrivals:
                self._tracks[key] = _Track(entry.arrivals, now, block)
                continue
            reason = self._idle_reason(key, limit, track, now, clock)
            if reason is not None and resubscribe(key, reason):
                self.resubscribes += 1
                log.warning("%s %s silent while connected (%s): resubscribed", *key, reason)
                self._tracks[key] = _Track(entry.arrivals, now, block)

    def _block_clock(self, now: float) -> Optional[int]:
        """Blocks seen so far (the block-height subscription's arrivals), or None if there is no
        moving block clock (not subscribed, not active, or itself silent too long)."""
        entry = self._registry.get(BLOCK_CLOCK_KEY)
        if entry is None or entry.state is not SubscriptionState.ACTIVE:
            return None
        track = self._tracks.get(BLOCK_CLOCK_KEY)
        limit = self._limits.get(BLOCK_HEIGHT, DEFAULT_IDLE_LIMITS[BLOCK_HEIGHT])
        if (
            track is not None
            and entry.arrivals == track.arrivals
            and limit.seconds is not None
            and now - track.since >= limit.seconds
        ):
            return None
        return entry.arrivals

    def _idle_reason(
        self, key: Key, limit: IdleLimit, track: _Track, now: float, clock: Optional[int]
    ) -> Optional[str]:
        if key[0] in (ORDERBOOK, TRADES) and not self._market_active(key[1]):
            return None
        if clock is not None and limit.blocks is not None and key != BLOCK_CLOCK_KEY:
            blocks = clock - track.block
            if blocks >= limit.blocks:
                return f"idle: no message for {blocks} blocks"
            return None
        silent = now - track.since
        if limit.seconds is not None and silent >= limit.seconds:
            return f"idle: no message for {silent:.1f} s"
        return None

    def _market_active(self, ticker: Optional[str]) -> bool:
        market = self._markets.get(ticker or "")
        return market is None or market.status in (None, MarketStatus.ACTIVE)


def parse_limits(
    limits: Optional[Mapping[str, object]],
) -> Optional[Dict[str, IdleLimit]]:
    """The client's ``idle_limits``: None disables; a mapping channel -> :class:`IdleLimit` or
    ``(blocks, seconds)`` overrides the defaults per channel (a channel mapped to None is not
    watched)."""
    if limits is None:
        return None
    out: Dict[str, IdleLimit] = dict(DEFAULT_IDLE_LIMITS)
    for channel, value in limits.items():
        if channel not in CHANNELS:
            raise ValueError(f"idle_limits: unknown channel {channel!r}")
        if value is None:
            out.pop(channel, None)
        elif isinstance(value, IdleLimit):
            out[channel] = value
        elif isinstance(value, tuple) and len(value) == 2:
            pair: Tuple[Optional[int], Optional[float]] = value  # type: ignore[assignment]
            out[channel] = IdleLimit(*pair)
        else:
            raise ValueError(
                f"idle_limits[{channel!r}] must be an IdleLimit, (blocks, seconds) or None"
            )
    return out
