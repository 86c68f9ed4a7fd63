"""``RedisStreamSink``: every subscription's frames into its own Redis stream, with checkpoints.

Layout of the streams: :mod:`dydx_ws.sinks.streams`. Per batch (on the sink's thread):

- each data frame becomes one ``XADD <stream> MAXLEN ~ <maxlen>`` entry; a batch goes out as one
  ``MULTI``/``EXEC`` pipeline (one round trip, all or nothing, retried as a unit);
- the sink's shadow of the ingest's local state (:class:`~dydx_ws.sinks.checkpoint.ShadowState`)
  applies the frames in stream order; every ``checkpoint_interval`` seconds per stream (and at
  once after a gap) a checkpoint entry follows, and ``<stream>:checkpoint`` points at it, so a
  consumer that starts late or restarts loads a consistent state from there;
- lost frames are never bridged silently: after an overflow of the sink's queue every stream
  gets a gap marker and the ingest is asked for fresh snapshots (its subscriptions resync);
  after a batch that could not be stored, or a Redis restart (its ``run_id`` changed, so it may
  have lost what it had; looked at after a failure and every second, since redis-py reconnects by
  itself), every stream gets a gap marker followed by a checkpoint.

Requires the ``redis`` extra (redis-py).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional, Set, Tuple

from ..engine._subscriptions import Key
from .base import Sink, SinkFrame
from .checkpoint import ShadowState
from .streams import CHECKPOINT, FRAME, GAP, SNAPSHOT, StreamName, checkpoint_key
from .streams import default_stream_name as _default_name

__all__ = ["RedisStreamSink"]

log = logging.getLogger("dydx_ws.sinks.redis")

_Entry = Tuple[str, Dict[str, Any], str]  # stream, fields, kind
_RESTART_CHECK = 1.0  # seconds between two looks at the server's run_id


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise ImportError("RedisStreamSink needs redis-py: pip install 'dydx_ws[redis]'") from None
    return redis


class RedisStreamSink(Sink):
    """Write every subscription's frames to Redis Streams (see the module docs).

    ``url``: ``redis://host:port/db``; ``maxlen``: approximate cap per stream (``MAXLEN ~``);
    ``checkpoint_interval``: seconds between two checkpoints of one stream; ``stream_name``:
    ``(channel, id) -> name`` (default ``dydx:<channel>[:<id>]``); ``prefix`` of the default
    names. Other options are :class:`~dydx_ws.sinks.Sink`'s (queue, batching, retries).
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        maxlen: int = 100_000,
        checkpoint_interval: float = 5.0,
        stream_name: Optional[StreamName] = None,
        prefix: str = "dydx",
        socket_timeout: float = 5.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if maxlen < 1 or checkpoint_interval <= 0:
            raise ValueError("maxlen must be >= 1 and checkpoint_interval > 0")
        self._redis = _redis_module()
        self.url = url
        self.maxlen = maxlen
        self.checkpoint_interval = checkpoint_interval
        self._stream_name: StreamName = stream_name or (lambda c, i: _default_name(c, i, prefix))
        self._socket_timeout = socket_timeout
        self._client: Any = None
        self._shadow: Optional[ShadowState] = None
        self.epoch = os.urandom(6).hex()
        self._seq: Dict[str, int] = {}
        self._names: Dict[Key, str] = {}
        self._last_checkpoint: Dict[Key, float] = {}
        self._force: Set[Key] = set()
        self._gap_next = False  # write gap markers (and checkpoints) before the next frames
        self._prepared: Optional[Tuple[List[SinkFrame], List[_Entry]]] = None
        self._run_id: Optional[str] = None
        self._failed = False
        self._checked_at = 0.0
        self._figures = dict.fromkeys(("entries", "checkpoints", "gaps", "redis_restarts"), 0)

    # -- Sink ----------------------------------------------------------------------------------
    def open(self) -> None:
        self._shadow = ShadowState(self.context.uncross)
        self._client = self._redis.Redis.from_url(
            self.url, socket_timeout=self._socket_timeout, socket_connect_timeout=2.0
        )
        self._run_id = self._server_run_id()

    def write(self, batch: List[SinkFrame]) -> None:
        if self._client is None:
            self.open()
        now = time.monotonic()
        if self._failed or now - self._checked_at >= _RESTART_CHECK:
            self._checked_at = now
            self._check_restart()  # redis-py reconnects by itself: look at the server's run_id
        if self._prepared is None or self._prepared[0] is not batch:
            self._prepared = (batch, self._prepare(batch))  # once: retries resend the same
        entries = self._prepared[1]
        try:
            ids = self._send(entries)
        except Exception:
            self._failed = True
            raise
        self._failed = False
        self._prepared = None
        self._figures["entries"] += len(entries)
        self._point_checkpoints(entries, ids)

    def on_gap(self, unseen: bool) -> None:
        self._gap_next = True
        self._prepared = None
        if unseen and self._shadow is not None:
            self._shadow.invalidate()
            for key in list(self._names):
                self.context.resync(key)  # fresh snapshots replace what the shadow missed

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection may raise: nothing to do
                log.debug("closing the Redis connection failed", exc_info=True)

    def sink_stats(self) -> Dict[str, Any]:
        return {**self._figures, "streams": len(self._names), "url": self.url}

    # -- internals -------------------------------------------------------------------------------
    def stream_for(self, key: Key) -> str:
        """The stream name of a subscription key."""
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = self._stream_name(key[0], key[1])
        return name

    def _server_run_id(self) -> Optional[str]:
        info = self._client.info("server")
        run_id = info.get("run_id")
        return str(run_id) if run_id is not None else None

    def _check_restart(self) -> None:
        """After a failure: if Redis restarted it may have lost what it had acknowledged."""
        run_id = self._server_run_id()
        if self._run_id is not None and run_id != self._run_id:
            log.warning("Redis restarted (run_id changed): marking every stream with a gap")
            self._figures["redis_restarts"] += 1
            self._gap_next = True
            self._prepared = None
        self._run_id = run_id

    def _entry(self, stream: str, kind: str, data: str, at: float, conn: str) -> _Entry:
        fields: Dict[str, Any] = {"k": kind, "d": data, "t": repr(at), "c": conn, "e": self.epoch}
        if kind != GAP:
            seq = self._seq.get(stream, 0) + 1
            self._seq[stream] = seq
            fields["s"] = seq
        return (stream, fields, kind)

    def _prepare(self, batch: List[SinkFrame]) -> List[_Entry]:
        """Entries for a batch, in order; applies the frames to the shadow state once."""
        shadow = self._shadow
        assert shadow is not None
        entries: List[_Entry] = []
        now = time.monotonic()
        if self._gap_next:
            self._gap_next = False
            for key in list(self._names):
                entries.append(self._entry(self.stream_for(key), GAP, "", time.time(), ""))
                self._figures["gaps"] += 1
                self._force.add(key)  # a checkpoint as soon as the state is valid again
        due = set(self._force)
        for frame in batch:
            if not frame.is_data:
                continue
            key = frame.key
            stream = self.stream_for(key)
            shadow.apply(frame)
            kind = SNAPSHOT if frame.type == "subscribed" else FRAME
            conn = frame.connection or ""
            entries.append(self._entry(stream, kind, frame.raw, frame.received_at, conn))
            if kind == SNAPSHOT:
                self._last_checkpoint[key] = now
                self._force.discard(key)
                due.discard(key)
            elif now - self._last_checkpoint.setdefault(key, now) >= self.checkpoint_interval:
                due.add(key)
        for key in due:
            if self._add_checkpoint(entries, key, now):
                self._force.discard(key)
        return entries

    def _add_checkpoint(self, entries: List[_Entry], key: Key, now: float) -> bool:
        assert self._shadow is not None
        frame = self._shadow.checkpoint(key)
        if frame is None:
            return False
        text = _dumps(frame)
        entries.append(self._entry(self.stream_for(key), CHECKPOINT, text, time.time(), ""))
        self._last_checkpoint[key] = now
        self._figures["checkpoints"] += 1
        return True

    def _send(self, entries: List[_Entry]) -> List[Any]:
        if not entries:
            return []
        pipe = self._client.pipeline(transaction=True)
        for stream, fields, _kind in entries:
            pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=True)
        return list(pipe.execute())

    def _point_checkpoints(self, entries: List[_Entry], ids: List[Any]) -> None:
        latest: Dict[str, Any] = {}
        for (stream, _fields, kind), entry_id in zip(entries, ids):
            if kind in (SNAPSHOT, CHECKPOINT):
                latest[stream] = entry_id
        if not latest:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for stream, entry_id in latest.items():
                pipe.set(checkpoint_key(stream), entry_id)
            pipe.execute()
        except Exception as exc:  # the entries are stored: a later checkpoint points again
            log.warning("could not update checkpoint pointers: %s", exc)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"))
