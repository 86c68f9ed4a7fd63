"""What a server ``error`` frame means for our subscriptions (docs/protocol.md §2.4).

Pure functions: which subscriptions an error is about (its ``channel``/``id`` fields on newer
servers, ``(channel-id)`` in the text, or the pending subscriptions of the channel it names), and
what to do about it (retry, treat as confirmed, wait for the server's close, or fail). Ids are
resolved through the channel table (:mod:`._channels`): an error echoes the id the client sent,
which is none for markets and block height.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from ._channels import find
from ._messages import ErrorMessage

if TYPE_CHECKING:
    from ..engine._subscriptions import ConnectionView, SubscriptionRegistry

__all__ = ["ErrorAction", "action_for", "keys_of_error", "limit_of"]

Key = Tuple[str, Optional[str]]
_ID_IN_TEXT = re.compile(r"\((v4_[a-z_]+)-(.*)\)")
_CHANNEL_IN_TEXT = re.compile(r"\b(v4_[a-z_]+)\b")
_LIMIT_IN_TEXT = re.compile(r"\(limit=(\d{1,6})\)")
RETRYABLE_PREFIX = "Internal error, could not fetch data for subscription"
# The per-connection limit (§4.4), and the text of later revisions that close the connection
# (4008) for hitting it repeatedly: both name only the channel and refuse the last subscribe.
_LIMIT_PREFIXES = (
    "Per-connection subscription limit",
    "Repeatedly exceeded the per-connection subscription limit",
)


class ErrorAction(Enum):
    RETRY = "retry"  # "Internal error, could not fetch data": the snapshot fetch failed
    CONFIRM = "confirm"  # "already subscribed": the server has it (no new snapshot will come)
    WAIT_FOR_CLOSE = "wait"  # the subscribe rate limit: the server closes the socket (1008)
    MOVE = "move"  # the per-connection limit: the subscription goes to another connection
    FAIL = "fail"  # any other refusal: the subscription fails with the server's text


def action_for(text: str) -> ErrorAction:
    if text.startswith(RETRYABLE_PREFIX):
        return ErrorAction.RETRY
    if "already subscribed" in text:
        return ErrorAction.CONFIRM
    if text.startswith("Too many subscribe attempts"):
        return ErrorAction.WAIT_FOR_CLOSE
    if text.startswith(_LIMIT_PREFIXES):
        return ErrorAction.MOVE
    return ErrorAction.FAIL


def limit_of(text: str) -> Optional[int]:
    """The ``(limit=N)`` a per-connection limit refusal names, or None."""
    found = _LIMIT_IN_TEXT.search(text)
    return int(found.group(1)) if found else None


def keys_of_error(
    msg: ErrorMessage, registry: Union[SubscriptionRegistry, ConnectionView]
) -> List[Key]:
    """The live subscriptions ``msg`` is about (possibly none: e.g. an invalid-message error)."""
    if msg.channel:
        spec = find(msg.channel)
        if spec is None:
            return []
        key = (spec.name, spec.frame_id(msg.id))
        return [key] if registry.get(key) is not None else []
    text = msg.message
    found = _ID_IN_TEXT.search(text)
    spec = find(found.group(1)) if found else None
    if found and spec is not None:
        key = (spec.name, spec.frame_id(found.group(2)))  # the server-normalised id
        return [key] if registry.get(key) is not None else []
    named = _CHANNEL_IN_TEXT.search(text)
    spec = find(named.group(1)) if named else None
    if spec is not None:
        pending = registry.pending_of_channel(spec.name)
        if text.startswith(_LIMIT_PREFIXES):
            # The refused subscribe is the last one sent that has no answer yet (often a retry
            # of an older subscription): not necessarily the newest subscription.
            refused = registry.last_sent_unanswered(spec.name)
            return [refused] if refused is not None else pending[-1:]
        return pending
    return []
