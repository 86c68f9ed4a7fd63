"""``RedisStreamClient``: the consumer on the other side of a ``RedisStreamSink``.

It *is* a :class:`~dydx_ws.DydxWebSocketClient` whose frames come from Redis instead of a
socket: the same ``subscribe_*`` methods, typed messages, callbacks on the worker pool, local
state (``order_book``, ``markets``, ``subaccount``), events, ``stats()`` and lifecycle. A reader
thread ``dydx-ws-redis-reader`` plays the part of the I/O thread: it feeds every stream entry
to the client's public feed entry points (:meth:`~dydx_ws.DydxWebSocketClient.feed` and
``feed_opened`` / ``feed_flush`` / ``feed_closed`` / ``feed_gap``), so
decoding, routing, local state and delivery are the client's code, unchanged.

How each subscription's stream (layout: :mod:`dydx_ws.sinks.streams`) is read:

- Start: from the stream's latest checkpoint or server snapshot (``<stream>:checkpoint``),
  which loads a consistent state, then every entry after it, in order. No checkpoint yet (or
  trimmed away): entries are skipped until the next snapshot or checkpoint.
- Checkpoints met later are skipped (the state is already there); server snapshots (the ingest
  re-subscribed) are applied, as a live client does.
- Gaps are never bridged: a gap marker, a sequence jump (entries trimmed by ``MAXLEN`` before
  this consumer read them, or lost by a Redis restart) or a new writer epoch (the ingest
  restarted) is reported as a ``resync`` event (:class:`~dydx_ws.ResyncEvent` with
  ``detail=[("stream_gap", reason)]``); the subscription's book is marked stale and the stream
  restarts from its latest checkpoint after the gap (or waits for the next one).
- Lost connection to Redis: ``disconnected`` (books stale), reconnect with back-off
  (``reconnect`` policy), ``connected``; every subscription restarts from its latest checkpoint
  (reported as a ``resync``) and ``reconnected`` follows once all are restored. Trades and
  candles already delivered are not delivered twice.
- ``group="name"`` (with a distinct ``consumer`` per process): consumer groups, each entry goes
  to one consumer of the group (work sharing, acknowledged with ``XACK`` once handed to the
  client). Meant for stateless channels (trades, candles): a group member sees only part of a
  book's updates, so its local books are not complete. Without ``group``: plain reads, every
  consumer sees every entry (broadcast).

Requires the ``redis`` extra (redis-py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from .client import DydxWebSocketClient
from .engine._subscriptions import Key
from .engine._worker_pool import OverflowPolicy
from .protocol._channels import CANDLES, TRADES
from .sinks.streams import CHECKPOINT, GAP, SNAPSHOT, StreamName, checkpoint_key
from .sinks.streams import default_stream_name as _default_name
from .transport._reconnect import ReconnectPolicy

__all__ = ["RedisStreamClient"]

log = logging.getLogger("dydx_ws.redis_client")

_STATELESS = (TRADES, CANDLES)  # nothing to rebuild: what was delivered is not delivered again
StreamId = Tuple[int, int]


def _parse_id(value: Any) -> StreamId:
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, _, seq = text.partition("-")
    return (int(ms), int(seq or 0))


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


@dataclass
class _Cursor:
    """Where one subscription's stream is read from, and what was delivered of it."""

    key: Key
    stream: str
    last_id: StreamId = (0, 0)
    epoch: str = ""
    seq: int = 0
    synced: bool = False
    delivered: Tuple[str, int] = ("", 0)  # (epoch, seq) of the last entry handed to the client

    @property
    def xread_id(self) -> str:
        return f"{self.last_id[0]}-{self.last_id[1]}"


class RedisStreamClient(DydxWebSocketClient):
    """Typed messages, callbacks and local state from the Redis streams an ingest writes.

    ``url``: the Redis server (``redis://host:port/db``). ``stream_name`` / ``prefix``: as given
    to the sink. ``group`` / ``consumer``: consumer-group reads (see the module docs).
    ``block``: seconds one read waits for new entries (also how soon a new subscription
    starts); ``count``: entries per read. ``reconnect``: back-off after a lost Redis connection.
    ``workers``, ``queue_size``, ``overflow``, ``block_timeout``, ``batched``, ``uncross``: as
    for :class:`~dydx_ws.DydxWebSocketClient` (``uncross`` should match the ingest's).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        group: Optional[str] = None,
        consumer: Optional[str] = None,
        stream_name: Optional[StreamName] = None,
        prefix: str = "dydx",
        block: float = 0.1,
        count: int = 1000,
        reconnect: Optional[ReconnectPolicy] = None,
        workers: int = 4,
        queue_size: int = 10_000,
        overflow: Union[OverflowPolicy, str] = OverflowPolicy.BLOCK,
        block_timeout: float = 1.0,
        batched: bool = False,
        uncross: str = "message_id",
    ) -> None:
        try:
            import redis
        except ImportError:
            raise ImportError(
                "RedisStreamClient needs redis-py: pip install 'dydx_ws[redis]'"
            ) from None
        if block <= 0 or count < 1:
            raise ValueError("block must be > 0 and count >= 1")
        if group is not None and not consumer:
            raise ValueError("a consumer group needs a consumer name (unique per process)")
        super().__init__(
            url=url,
            workers=workers,
            queue_size=queue_size,
            overflow=overflow,
            block_timeout=block_timeout,
            batched=batched,
            uncross=uncross,
            check_interval=None,
            cpu_affinity=None,
        )
        self._redis = redis
        self.redis_url = url
        self.group = group
        self.consumer = consumer
        self._stream_name: StreamName = stream_name or (lambda c, i: _default_name(c, i, prefix))
        self._block_ms = max(1, int(block * 1000))
        self._count = count
        self._policy = reconnect or ReconnectPolicy(initial_delay=0.1, max_delay=5.0)
        self._reader: Optional[threading.Thread] = None
        self._reader_lock = threading.Lock()
        self._halt = threading.Event()
        self._redis_up = threading.Event()
        self._cursors: Dict[Key, _Cursor] = {}
        self._delivered: Dict[Key, Tuple[str, int]] = {}
        self._opened = False
        self._figures = dict.fromkeys(("entries", "gaps", "checkpoints_loaded", "skipped"), 0)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, *, connect: bool = True) -> RedisStreamClient:
        """Start the workers and the reader thread (idempotent)."""
        super().start(connect=False)
        with self._reader_lock:
            if self._reader is None and connect:
                self._reader = threading.Thread(target=self._run, name="dydx-ws-redis-reader")
                self._reader.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop reading, then stop the workers; bounded and idempotent."""
        deadline = time.monotonic() + timeout
        self._halt.set()
        reader_done = True
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(max(0.0, deadline - time.monotonic()))
            reader_done = not self._reader.is_alive()
        return super().stop(max(0.0, deadline - time.monotonic())) and reader_done

    @property
    def connected(self) -> bool:
        return self._redis_up.is_set()

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        return self._redis_up.wait(timeout)

    def stats(self) -> Dict[str, Any]:
        figures = super().stats()
        figures["redis"] = {
            **self._figures,
            "url": self.redis_url,
            "group": self.group,
            "streams": {
                c.stream: {
                    "last_id": c.xread_id,
                    "epoch": c.epoch,
                    "seq": c.seq,
                    "synced": c.synced,
                }
                for c in list(self._cursors.values())
            },
        }
        return figures

    def __repr__(self) -> str:
        return f"<RedisStreamClient {self.redis_url} {self.state}, {len(self._cursors)} streams>"

    # -- the reader thread ------------------------------------------------------------------------
    def _run(self) -> None:
        conn: Any = None
        attempt = 0
        errors = (self._redis.ConnectionError, self._redis.TimeoutError, OSError)
        while not self._halt.is_set():
            try:
                if conn is None:
                    conn = self._redis.Redis.from_url(
                        self.redis_url,
                        socket_timeout=self._block_ms / 1000 + 5.0,
                        socket_connect_timeout=2.0,
                    )
                    conn.ping()
                    attempt = 0
                    self._on_redis_open(conn)
                self._read_once(conn)
            except errors as exc:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        log.debug("closing a broken Redis connection failed", exc_info=True)
                conn = None
                self._on_redis_lost(exc)
                attempt += 1
                cap = self._policy.cap(attempt)
                self._halt.wait(random.uniform(0.5, 1.0) * cap)
            except Exception as exc:  # a bug of ours must not end the reader: report it
                log.exception("Redis reader error")
                self.feed_error(f"Redis reader error: {exc!r}", exc)
                self._halt.wait(0.5)
        if conn is not None:
            conn.close()
        self._redis_up.clear()

    def _on_redis_open(self, conn: Any) -> None:
        reconnect = self._opened
        self._opened = True
        self._cursors = {}
        self._redis_up.set()
        self.feed_opened()  # subscriptions pending until their checkpoint is loaded
        self._sync_cursors(conn, reconnect)

    def _on_redis_lost(self, exc: BaseException) -> None:
        if self._redis_up.is_set():
            self._redis_up.clear()
            log.warning("lost the Redis connection: %s", exc)
            self.feed_closed(exc)
        else:
            self.feed_error(f"cannot reach Redis: {exc}", exc)

    def _sync_cursors(self, conn: Any, reconnect: bool = False) -> None:
        """Start reading new subscriptions (from their checkpoints), forget ended ones."""
        keys = {h.key for h in self.subscriptions()}
        for key in list(self._cursors):
            if key not in keys:
                del self._cursors[key]
        for key in keys:
            if key not in self._cursors:
                cursor = _Cursor(key, self._stream_name(key[0], key[1]))
                self._cursors[key] = cursor
                if self.group is not None:
                    self._join_group(conn, cursor)
                if reconnect:  # stale (reported) first: the checkpoint then makes it fresh
                    self._report_gap(cursor, "Redis connection lost; restarted from checkpoint")
                self._load_checkpoint(conn, cursor)

    def _join_group(self, conn: Any, cursor: _Cursor) -> None:
        pointer = conn.get(checkpoint_key(cursor.stream))
        start = _text(pointer) if pointer else "$"
        try:
            conn.xgroup_create(cursor.stream, self.group, id=start, mkstream=True)
        except self._redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _load_checkpoint(self, conn: Any, cursor: _Cursor) -> bool:
        """Feed the stream's latest checkpoint or snapshot; True if there was one."""
        pointer = conn.get(checkpoint_key(cursor.stream))
        if pointer:
            entries = conn.xrange(cursor.stream, min=pointer, max=pointer)
            if entries:
                entry_id, fields = entries[0]
                self._figures["checkpoints_loaded"] += 1
                self._accept(cursor, _parse_id(entry_id), fields)
                self._feed(cursor, fields)
                cursor.synced = True
                return True
        cursor.synced = False
        return False

    def _read_once(self, conn: Any) -> None:
        self._sync_cursors(conn)
        if not self._cursors:
            self._halt.wait(self._block_ms / 1000)
            return
        by_stream = {c.stream: c for c in self._cursors.values()}
        if self.group is not None:
            streams = {name: ">" for name in by_stream}
            reply = conn.xreadgroup(
                self.group, self.consumer, streams, count=self._count, block=self._block_ms
            )
        else:
            streams = {name: c.xread_id for name, c in by_stream.items()}
            reply = conn.xread(streams, count=self._count, block=self._block_ms)
        for stream, entries in reply or []:
            cursor = by_stream.get(_text(stream))
            if cursor is None:
                continue
            acked: List[Any] = []
            for entry_id, fields in entries:
                self._figures["entries"] += 1
                if self.group is not None:
                    self._handle_group(cursor, fields)
                    acked.append(entry_id)
                else:
                    self._handle(conn, cursor, _parse_id(entry_id), fields)
            if acked:
                conn.xack(cursor.stream, self.group, *acked)
        self.feed_flush()

    # -- one entry ------------------------------------------------------------------------------
    def _handle(
        self, conn: Any, cursor: _Cursor, entry_id: StreamId, fields: Dict[Any, Any]
    ) -> None:
        if entry_id <= cursor.last_id:
            return  # before a checkpoint we jumped to
        kind = _text(fields.get(b"k", b""))
        epoch = _text(fields.get(b"e", b""))
        seq = int(fields[b"s"]) if b"s" in fields else None
        if kind == GAP:
            cursor.last_id = entry_id
            self._gap(conn, cursor, entry_id, "the writer lost frames of this stream")
            return
        if cursor.synced:
            if epoch != cursor.epoch:
                self._gap(conn, cursor, entry_id, "the ingest restarted (new writer epoch)")
            elif seq is not None and seq <= cursor.seq:
                cursor.last_id = entry_id  # a batch the writer resent: already delivered
                return
            elif seq is not None and seq != cursor.seq + 1:
                missing = seq - cursor.seq - 1
                self._gap(conn, cursor, entry_id, f"{missing} entries missing (trimmed or lost)")
            if entry_id <= cursor.last_id:
                return  # the gap moved us to a later checkpoint
        self._accept(cursor, entry_id, fields)
        if not cursor.synced:
            if kind in (SNAPSHOT, CHECKPOINT):
                self._feed(cursor, fields)
                cursor.synced = True
            else:
                self._figures["skipped"] += 1
            return
        if kind == CHECKPOINT:
            return
        self._feed(cursor, fields)

    def _handle_group(self, cursor: _Cursor, fields: Dict[Any, Any]) -> None:
        kind = _text(fields.get(b"k", b""))
        if kind in (GAP, CHECKPOINT):
            return
        self._feed(cursor, fields, dedupe=False)  # a group hands each entry out once

    def _accept(self, cursor: _Cursor, entry_id: StreamId, fields: Dict[Any, Any]) -> None:
        cursor.last_id = entry_id
        cursor.epoch = _text(fields.get(b"e", b""))
        if b"s" in fields:
            cursor.seq = int(fields[b"s"])

    def _feed(self, cursor: _Cursor, fields: Dict[Any, Any], dedupe: bool = True) -> None:
        """Hand one entry's frame to the client (skipping trades/candles delivered before)."""
        mark = (cursor.epoch, cursor.seq)
        done = self._delivered.get(cursor.key)
        kind = _text(fields.get(b"k", b""))
        if (
            dedupe
            and kind != CHECKPOINT
            and cursor.key[0] in _STATELESS
            and done is not None
            and done[0] == mark[0]
            and mark[1] <= done[1]
        ):
            self._figures["skipped"] += 1
            return
        self._delivered[cursor.key] = mark
        raw = _text(fields.get(b"d", b""))
        try:
            received_at = float(fields.get(b"t", b"0"))
        except ValueError:
            received_at = time.time()
        self.feed(raw, received_at=received_at)

    def _gap(self, conn: Any, cursor: _Cursor, entry_id: StreamId, reason: str) -> None:
        """Report a gap, mark the book stale, and restart from a later checkpoint if any."""
        self._report_gap(cursor, reason)  # the book is stale from here
        cursor.synced = False
        pointer = conn.get(checkpoint_key(cursor.stream))
        if pointer and _parse_id(pointer) > entry_id:
            self._load_checkpoint(conn, cursor)

    def _report_gap(self, cursor: _Cursor, reason: str) -> None:
        self._figures["gaps"] += 1
        log.warning("stream %s: %s", cursor.stream, reason)
        self.feed_gap(cursor.key, reason)
