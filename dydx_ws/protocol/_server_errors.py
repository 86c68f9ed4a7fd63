"""What a server ``error`` frame means for our subscriptions (docs/protocol.md §2.4).

Pure functions: which subscriptions an error is about (its ``channel``/``id`` fields on newer
servers, ``(channel-id)`` in the text, or the pending subscriptions of the channel it names), and
what to do about it (retry, treat as confirmed, wait for the server's close, or fail).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import List, Optional, Tuple

from ..engine._subscriptions import RETRYABLE_PREFIX, SubscriptionRegistry
from ._decode import CHANNELS
from ._messages import ErrorMessage

__all__ = ["ErrorAction", "action_for", "keys_of_error"]

Key = Tuple[str, Optional[str]]
_ID_IN_TEXT = re.compile(r"\((v4_[a-z_]+)-(.*)\)")
_CHANNEL_IN_TEXT = re.compile(r"\b(v4_[a-z_]+)\b")


class ErrorAction(Enum):
    RETRY = "retry"  # "Internal error, could not fetch data": the snapshot fetch failed
    CONFIRM = "confirm"  # "already subscribed": the server has it (no new snapshot will come)
    WAIT_FOR_CLOSE = "wait"  # the subscribe rate limit: the server closes the socket (1008)
    FAIL = "fail"  # any other refusal: the subscription fails with the server's text


def action_for(text: str) -> ErrorAction:
    if text.startswith(RETRYABLE_PREFIX):
        return ErrorAction.RETRY
    if "already subscribed" in text:
        return ErrorAction.CONFIRM
    if text.startswith("Too many subscribe attempts"):
        return ErrorAction.WAIT_FOR_CLOSE
    return ErrorAction.FAIL


def keys_of_error(msg: ErrorMessage, registry: SubscriptionRegistry) -> List[Key]:
    """The live subscriptions ``msg`` is about (possibly none: e.g. an invalid-message error)."""
    if msg.channel:
        key = (msg.channel, msg.id if msg.channel != "v4_markets" else None)
        return [key] if registry.get(key) is not None else []
    text = msg.message
    found = _ID_IN_TEXT.search(text)
    if found and found.group(1) in CHANNELS:
        channel, sid = found.group(1), found.group(2)
        key = (channel, None if channel == "v4_markets" else sid)
        return [key] if registry.get(key) is not None else []
    named = _CHANNEL_IN_TEXT.search(text)
    if named and named.group(1) in CHANNELS:
        pending = registry.pending_of_channel(named.group(1))
        if text.startswith("Per-connection subscription limit"):
            # The refused subscribe is the last one sent that has no answer yet (often a retry
            # of an older subscription): not necessarily the newest subscription.
            refused = registry.last_sent_unanswered(named.group(1))
            return [refused] if refused is not None else pending[-1:]
        return pending
    return []
