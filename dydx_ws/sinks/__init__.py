"""Sinks: where a client sends every frame it receives, besides its callbacks.

- :class:`Sink` (:mod:`dydx_ws.sinks.base`): the bounded queue, batching, retries and thread.
- :class:`RedisStreamSink` (extra ``redis``): one Redis stream per subscription, with
  checkpoints of local state for late consumers (:class:`dydx_ws.RedisStreamClient`).
- :class:`ParquetSink` (extra ``parquet``): a Hive-partitioned Parquet data set
  (:mod:`dydx_ws.history` reads and replays it).

The optional engines (redis-py, pyarrow) are imported only when such a sink is created.
"""

from typing import Any

from .base import ClientContext, Sink, SinkFrame

__all__ = ["ClientContext", "ParquetSink", "RedisStreamSink", "Sink", "SinkFrame"]


def __getattr__(name: str) -> Any:
    if name == "RedisStreamSink":
        from .redis import RedisStreamSink

        return RedisStreamSink
    if name == "ParquetSink":
        from .parquet import ParquetSink

        return ParquetSink
    raise AttributeError(name)
