"""Reconnect timing: exponential backoff with full jitter, caps, give-up rules and a 429 floor.

Architecture: the client's I/O thread runs its own outer loop around ``run_forever`` (never
websocket-client's ``reconnect=``, which is a fixed sleep). That loop owns one :class:`Backoff`,
made from an immutable :class:`ReconnectPolicy`:

    backoff = policy.backoff()
    while not stopping:
        connect() -> on open: backoff.connected()
        ... connection drops ...
        delay = backoff.next_delay(rate_limited=handshake_was_429)
        if delay is None: give up (DydxConnectionError)
        wait(delay)          # an Event wait, so stop() interrupts it

Rules (each one unit-tested):

- Attempt ``n`` (0-based) waits ``uniform(0, min(max_delay, initial_delay * factor**n))`` with
  ``jitter=True`` ("full jitter"), or exactly the capped exponential with ``jitter=False``.
- The attempt counter resets only when a connection stayed up for at least ``stable_after``
  seconds. A connection that opens and drops sooner (a flap: accepted, then closed by the server
  or a load balancer) keeps climbing the backoff, so a flapping endpoint can never produce a tight
  reconnect loop (pybit #201, UBWA fixed 0.1 s loops).
- ``max_attempts`` and ``max_elapsed`` (seconds since the first failure of the current outage,
  brief flaps included) end the outage: ``next_delay`` returns ``None``.
- After an HTTP 429 at the handshake the wait is at least ``rate_limited_delay`` (the dYdX
  server's reconnect penalty is 30 s).

Everything is deterministic under an injected ``random.Random`` and clock. A :class:`Backoff` is
used by one thread (the I/O thread) and is not thread-safe.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Backoff", "ReconnectPolicy"]

logger = logging.getLogger("dydx_ws.transport._reconnect")


def _check_number(name: str, value: object, *, minimum: float, strict: bool) -> None:
    """Raise ValueError unless ``value`` is a finite real number above (or at) ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if (strict and value <= minimum) or (not strict and value < minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value!r}")


@dataclass(frozen=True)
class ReconnectPolicy:
    """How long to wait between reconnect attempts, and when to give up.

    Attributes:
        initial_delay: cap of the first wait, in seconds (> 0, so a retry loop can never spin).
        factor: growth of the cap per consecutive failed attempt (>= 1).
        max_delay: upper bound of any wait (>= initial_delay), before the 429 floor.
        jitter: full jitter, ``uniform(0, cap)``; False waits exactly ``cap``.
        max_attempts: give up after this many consecutive attempts (None: never; 0: never retry).
        max_elapsed: give up once the outage has lasted this long, in seconds (None: never).
        stable_after: a connection must stay up this long for the attempt counter to reset.
        rate_limited_delay: minimum wait after an HTTP 429 at the handshake.
    """

    initial_delay: float = 0.25
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: bool = True
    max_attempts: Optional[int] = None
    max_elapsed: Optional[float] = None
    stable_after: float = 10.0
    rate_limited_delay: float = 30.0

    def __post_init__(self) -> None:
        _check_number("initial_delay", self.initial_delay, minimum=0.0, strict=True)
        _check_number("factor", self.factor, minimum=1.0, strict=False)
        _check_number("max_delay", self.max_delay, minimum=0.0, strict=True)
        if self.max_delay < self.initial_delay:
            raise ValueError(
                f"max_delay ({self.max_delay!r}) must be >= initial_delay ({self.initial_delay!r})"
            )
        if not isinstance(self.jitter, bool):
            raise ValueError(f"jitter must be a bool, got {self.jitter!r}")
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 0
        ):
            raise ValueError(f"max_attempts must be None or an int >= 0, got {self.max_attempts!r}")
        if self.max_elapsed is not None:
            _check_number("max_elapsed", self.max_elapsed, minimum=0.0, strict=True)
        _check_number("stable_after", self.stable_after, minimum=0.0, strict=False)
        _check_number("rate_limited_delay", self.rate_limited_delay, minimum=0.0, strict=False)

    def cap(self, attempt: int) -> float:
        """The un-jittered wait before attempt ``attempt`` (0-based): capped exponential."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        if self.factor == 1.0:
            return float(self.initial_delay)
        # Stop growing once past max_delay: avoids float overflow after thousands of attempts.
        limit = math.log(self.max_delay / self.initial_delay, self.factor)
        if attempt >= limit:
            return float(self.max_delay)
        return float(min(self.max_delay, self.initial_delay * self.factor**attempt))

    def backoff(
        self,
        rng: Optional[random.Random] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Backoff:
        """A fresh mutable tracker following this policy (one per connection loop)."""
        return Backoff(self, rng=rng, clock=clock)


class Backoff:
    """Attempt counter and outage timer for one connection loop; see the module docstring."""

    def __init__(
        self,
        policy: ReconnectPolicy,
        *,
        rng: Optional[random.Random] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._attempts = 0
        self._outage_started: Optional[float] = None
        self._connected_at: Optional[float] = None

    @property
    def policy(self) -> ReconnectPolicy:
        return self._policy

    @property
    def attempts(self) -> int:
        """Delays handed out in the current outage (0 after a stable connection or reset())."""
        return self._attempts

    @property
    def outage_elapsed(self) -> Optional[float]:
        """Seconds since the first failure of the current outage, or None outside an outage."""
        if self._outage_started is None:
            return None
        return self._clock() - self._outage_started

    def connected(self) -> None:
        """Record that a connection opened. The counter resets only on a stable disconnect."""
        self._connected_at = self._clock()

    def disconnected(self) -> None:
        """Record that the connection closed; reset the counter if it was up >= stable_after."""
        if self._connected_at is None:
            return
        uptime = self._clock() - self._connected_at
        self._connected_at = None
        if uptime >= self._policy.stable_after:
            self.reset()
        else:
            logger.debug(
                "connection lasted %.3fs < stable_after=%.3fs: backoff continues at attempt %d",
                uptime,
                self._policy.stable_after,
                self._attempts,
            )

    def reset(self) -> None:
        """Forget the current outage: the next delay is the first one again."""
        self._attempts = 0
        self._outage_started = None

    def next_delay(self, rate_limited: bool = False) -> Optional[float]:
        """Seconds to wait before the next connection attempt, or None to give up.

        Call it after every failed attempt or lost connection (if ``connected()`` was called
        and ``disconnected()`` was not, the disconnect is recorded first). ``rate_limited``
        means the handshake was answered with HTTP 429: the wait is at least
        ``rate_limited_delay``.
        """
        if self._connected_at is not None:
            self.disconnected()
        policy = self._policy
        now = self._clock()
        if self._outage_started is None:
            self._outage_started = now
        if policy.max_attempts is not None and self._attempts >= policy.max_attempts:
            return None
        if policy.max_elapsed is not None and now - self._outage_started >= policy.max_elapsed:
            return None
        cap = policy.cap(self._attempts)
        delay = self._rng.uniform(0.0, cap) if policy.jitter else cap
        if rate_limited:
            delay = max(delay, policy.rate_limited_delay)
        self._attempts += 1
        return delay

    def __repr__(self) -> str:
        return f"Backoff(attempts={self._attempts}, outage_elapsed={self.outage_elapsed!r})"
