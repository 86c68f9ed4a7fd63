"""The worker side of the client: apply a message to local state, then call the callbacks.

Runs on the subscription's worker thread (``Dispatcher`` handler), so one subscription's messages
are applied and delivered in wire order. A state or callback error is isolated: counted, logged
and reported as an ``error`` event; the next message is delivered as usual.
"""

from __future__ import annotations

import logging
from typing import Callable, Hashable, List

from .events import Counters, Emitter
from .local_state import Key, LocalState
from .messages import Message, TradesMessage
from .subscriptions import Subscription, SubscriptionRegistry
from .throttle import Throttle

__all__ = ["Delivery", "label"]

log = logging.getLogger("dydx_ws.client")


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
            callback = handle._callback
            if callback is None or not wanted(handle):
                continue
            try:
                callback(msg)
            except Exception as exc:
                self._counters.add("callback_errors")
                log.exception("callback for %s raised", label(key))
                name = getattr(callback, "__name__", callback)
                self._emitter.error(
                    "callback",
                    f"callback {name!r} raised {exc!r}",
                    channel=key[0],
                    id=key[1],
                    exception=exc,
                )
