"""The worker side of the client: apply a message to local state, then call the callbacks.

Runs on the subscription's worker thread (``Dispatcher`` handler), so one subscription's messages
are applied and delivered in wire order. A state or callback error is isolated: counted, logged
and reported as an ``error`` event; the next message is delivered as usual.

A callback error nobody handles must not be silent: without an ``on("error")`` listener its
traceback is logged at ERROR on ``dydx_ws.client`` (shown on stderr by Python's handler of last
resort when the application configured no logging), at most once per ``TRACEBACK_INTERVAL`` per
subscription with a count of the ones left out; with a listener it is logged at DEBUG only.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, Hashable, List, Tuple

from ..events import Counters, Emitter
from ..protocol._messages import Message, TradesMessage
from ..state._store import Key, LocalState
from ._subscriptions import Subscription, SubscriptionRegistry
from ._throttle import Throttle

__all__ = ["Delivery", "label"]

log = logging.getLogger("dydx_ws.client")

TRACEBACK_INTERVAL = 10.0  # seconds between two logged tracebacks of one subscription


def label(key: Key) -> str:
    """``channel`` or ``channel/id``, for messages and stats."""
    return key[0] if key[1] is None else f"{key[0]}/{key[1]}"


class Delivery:
    def __init__(
        self,
        registry: SubscriptionRegistry,
        state: LocalState,
        emitter: Emitter,
        counters: Counters,
    ) -> None:
        self._registry = registry
        self._state = state
        self._emitter = emitter
        self._counters = counters
        self._uncross_reports = Throttle(1.0)  # per book: a crossed stream can cross every frame
        # key -> (monotonic time of the last logged traceback, errors left out since); one
        # subscription runs on one worker, so each entry has a single writer.
        self._logged: Dict[Key, Tuple[float, int]] = {}

    def __call__(self, key: Hashable, item: object) -> None:
        msg: Message = item  # type: ignore[assignment]
        typed: Key = key  # type: ignore[assignment]
        entry = self._registry.get(typed)
        if entry is None:
            return  # unsubscribed while this message was queued
        self._registry.count_message(entry, msg.received_at)
        try:
            uncrossed = self._state.apply(typed, msg)
        except Exception as exc:
            self._emitter.error("state", f"could not apply {label(typed)}: {exc}", exception=exc)
        else:
            if uncrossed:
                self._report_uncross(typed, uncrossed)
        if msg.is_snapshot:
            self._registry.mark_delivered(typed)  # wait_subscribed() may return now
        filler = self._state.backfill.get(typed)
        if filler is not None and isinstance(msg, TradesMessage):
            missed = filler.before_delivery(msg)
            if missed is not None:
                self._call(typed, entry.handles, missed, lambda h: bool(h.params.get("backfill")))
        self._call(typed, entry.handles, msg, lambda h: True)

    def _report_uncross(self, key: Key, count: int) -> None:
        """The book was crossed after a frame and levels were removed or reduced: counted
        (``stats()["uncrossed"]``) and reported (rate-limited ``error`` event ``"uncross"``)."""
        self._counters.add("uncrossed", count)
        held = self._uncross_reports.allow(key)
        if held is None:
            return
        more = f" ({held} earlier uncross(es) not reported separately)" if held else ""
        self._emitter.error(
            "uncross",
            f"{label(key)}: the book was crossed; {count} crossed level pair(s) resolved by the "
            f"uncross policy (levels removed or reduced){more}",
            channel=key[0],
            id=key[1],
        )

    def _call(
        self,
        key: Key,
        handles: List[Subscription],
        msg: Message,
        wanted: Callable[[Subscription], bool],
    ) -> None:
        for handle in list(handles):
            callback = handle.callback
            if callback is None or not wanted(handle):
                continue
            try:
                callback(msg)
            except Exception as exc:
                self._counters.add("callback_errors")
                name = getattr(callback, "__name__", callback)
                self._log_callback_error(key, name, exc)
                self._emitter.error(
                    "callback",
                    f"callback {name!r} raised {exc!r}",
                    channel=key[0],
                    id=key[1],
                    exception=exc,
                )

    def _log_callback_error(self, key: Key, name: object, exc: Exception) -> None:
        """Loud (rate-limited ERROR with traceback) unless an ``error`` listener handles it."""
        if self._emitter.has("error"):
            log.debug("callback %r for %s raised", name, label(key), exc_info=exc)
            return
        now = time.monotonic()
        last, left_out = self._logged.get(key, (-TRACEBACK_INTERVAL, 0))
        if now - last < TRACEBACK_INTERVAL:
            self._logged[key] = (last, left_out + 1)
            return
        self._logged[key] = (now, 0)
        more = f" ({left_out} more error(s) since the last traceback)" if left_out else ""
        log.error(
            "callback %r for %s raised%s; handle callback errors with client.on('error', ...) "
            "(unhandled, a traceback is logged at most every %g s per subscription)",
            name,
            label(key),
            more,
            TRACEBACK_INTERVAL,
            exc_info=exc,
        )
