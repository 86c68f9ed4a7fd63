"""The layout of the Redis streams a :class:`~dydx_ws.sinks.RedisStreamSink` writes and a
:class:`~dydx_ws.RedisStreamClient` reads (kept in one place so both sides agree).

One stream per subscription, named ``dydx:<channel>`` or ``dydx:<channel>:<id>`` by default
(``stream_name(channel, id)`` to change it). Each entry has the fields:

- ``k``: kind: ``f`` a frame, ``s`` a server snapshot frame (``subscribed``), ``c`` a checkpoint
  (a synthetic ``subscribed`` frame, :mod:`dydx_ws.sinks.checkpoint`), ``g`` a gap marker
  (frames of this stream were lost: consumers resynchronise from the next snapshot or
  checkpoint);
- ``d``: the frame's text exactly as received (checkpoints: the synthetic frame); empty for
  ``g``;
- ``t``: the local receive time (seconds since the epoch); ``c``: the connection id;
- ``e``: the writer's epoch (random per sink instance: a change means the ingest restarted);
- ``s``: the writer's sequence number in this stream and epoch (every entry but ``g``: a jump
  means entries were lost, e.g. trimmed by ``MAXLEN`` before a slow consumer read them or lost
  by a Redis restart).

The key ``<stream>:checkpoint`` holds the id of the stream's latest snapshot or checkpoint: a
consumer starts there.
"""

from __future__ import annotations

from typing import Callable, Optional

__all__ = [
    "CHECKPOINT",
    "FRAME",
    "GAP",
    "SNAPSHOT",
    "StreamName",
    "checkpoint_key",
    "default_stream_name",
]

FRAME, SNAPSHOT, CHECKPOINT, GAP = "f", "s", "c", "g"
StreamName = Callable[[str, Optional[str]], str]


def default_stream_name(channel: str, sid: Optional[str], prefix: str = "dydx") -> str:
    """``dydx:v4_orderbook:BTC-USD``, ``dydx:v4_markets``, ``dydx:v4_block_height``."""
    if sid is None or sid == channel:  # markets: no id; block height: the channel's name
        return f"{prefix}:{channel}"
    return f"{prefix}:{channel}:{sid}"


def checkpoint_key(stream: str) -> str:
    """The key holding the id of ``stream``'s latest snapshot or checkpoint entry."""
    return f"{stream}:checkpoint"
