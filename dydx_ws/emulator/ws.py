"""The socks side: per-connection state, the validation pipeline, subscriptions and delivery.

Follows docs/protocol.md §1-§4: ``connected`` first; one ``message_id`` counter per connection; the
§2.4 validation table with its exact texts; invalid-message and subscribe rate limits closing with
1008; per-connection channel limits; snapshot-then-stream; the global batched flush grouped by
version then child subaccount; heartbeat pings closing with 1011; and the stall/reject faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Coroutine, Deque, Dict, List, Optional, Set, Tuple, Union
from urllib.parse import quote

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from .candles import RESOLUTIONS
from .config import CHANNELS, VERSIONS, EmulatorConfig
from .jsutil import UNDEFINED, dumps, js_number, js_string, truthy
from .ratelimit import FixedWindowLimiter
from .rest import Comlink
from .simulator import Publication

log = logging.getLogger("dydx_ws.emulator.ws")

MARKETS = "v4_markets"
BLOCK_HEIGHT = "v4_block_height"
RATE_LIMITED = '{"message":"Rate limited"}'
BLOCKED_TEXT = (
    "Because this address appears to be a resident of, or trading from, a jurisdiction that "
    "violates our terms of use, or has engaged in activity that violates our terms of use, this "
    "address has been blocked."
)
SUBACCOUNT_LIMITS = {"v4_subaccounts": 128000, "v4_parent_subaccounts": 128}


@dataclass
class _Close:
    code: int
    reason: str


@dataclass
class Sub:
    """A registered subscription of one connection."""

    channel: str
    id: str
    batched: bool
    start_seq: int
    muted: bool = False  # the server's silent stop: registered, but nothing is sent


class _SubscribeFailed(Exception):
    """A subscribe rejected by docs/protocol.md §2.4 rows 8-12; ``detailed`` adds ``channel``/``id``
    to the error."""

    def __init__(self, message: str, detailed: bool = False, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.detailed = detailed
        self.rate_limited = rate_limited


def _reject_js_constant(name: str) -> Any:
    """``JSON.parse`` rejects the ``NaN``/``Infinity`` literals that Python's decoder accepts."""
    raise ValueError(f"not JSON: {name}")


class Conn:
    """One client connection: its counter, subscriptions, limiters and outgoing queue."""

    def __init__(self, ws: ServerConnection, config: EmulatorConfig) -> None:
        self.ws = ws
        self.id = str(uuid.uuid4())
        self.message_id = 0
        self.subs: Dict[Tuple[str, str], Sub] = {}
        self.inflight: Dict[str, int] = {}
        self.sub_limiter = FixedWindowLimiter(
            config.subscribe_points, config.subscribe_window, config.rate_limit_enabled
        )
        self.invalid_limiter = FixedWindowLimiter(
            config.invalid_points, config.invalid_window, config.rate_limit_enabled
        )
        self.queue: Deque[Union[str, _Close]] = deque()
        self.wake = asyncio.Event()
        self.closing = False
        self.hb_closing = False  # waiting for the client's answer to a 1011 close
        self.tasks: Set[asyncio.Task[None]] = set()
        self.data_prefix = f'{{"type":"channel_data","connection_id":"{self.id}","message_id":'
        self.batch_prefix = (
            f'{{"type":"channel_batch_data","connection_id":"{self.id}","message_id":'
        )

    def next_id(self) -> int:
        self.message_id += 1
        return self.message_id

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task owned by this connection (cancelled when it ends)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def send(self, text: str) -> None:
        """Queue a text frame (dropped once closing, like socks' ``sendMessageString``)."""
        if not self.closing:
            self.queue.append(text)
            self.wake.set()

    def close_after_pending(self, code: int, reason: str) -> None:
        if not self.closing:
            self.queue.append(_Close(code, reason))
            self.closing = True
            self.wake.set()

    def error(
        self,
        message: str,
        channel: Optional[str] = None,
        sub_id: Optional[str] = None,
        message_id: Optional[int] = None,
    ) -> None:
        body: Dict[str, Any] = {
            "type": "error",
            "message": message,
            "connection_id": self.id,
            "message_id": self.message_id if message_id is None else message_id,
        }
        if channel is not None:
            body["channel"] = channel
        if sub_id is not None:
            body["id"] = sub_id
        self.send(dumps(body))


def _data_tail(channel: str, sub_id: str, version: str, contents: str, suffix: str) -> str:
    if channel == MARKETS:
        head = f',"channel":"{channel}"'
    else:
        head = f',"id":{dumps(sub_id)},"channel":"{channel}"'
    return f'{head},"version":"{version}","contents":{contents}{suffix}}}'


def error_id(raw: Any) -> Optional[str]:
    """The ``id`` of a detailed error: the id the client sent, left out when it sent none (so a
    ``v4_markets`` error has no ``id`` key: ``JSON.stringify`` drops ``undefined``)."""
    return None if raw is UNDEFINED or raw is None else js_string(raw)


def normalize_id(channel: str, raw: Any) -> str:
    """``normalizeSubscriptionId``: block height defaults to itself, the rest to v4_markets."""
    if raw is UNDEFINED or raw is None:
        return BLOCK_HEIGHT if channel == BLOCK_HEIGHT else MARKETS
    return js_string(raw)


class Socks:
    """All websocket connections of the emulator; runs entirely inside the emulator's loop."""

    def __init__(self, comlink: Comlink, config: EmulatorConfig) -> None:
        self.comlink = comlink
        self.config = config
        self.conns: Dict[str, Conn] = {}
        self.unbatched: Dict[Tuple[str, str], Dict[str, Conn]] = {}
        self.batched: Dict[Tuple[str, str], Dict[str, Tuple[Conn, Sub]]] = {}
        self.buffer: Dict[Tuple[str, str], List[Tuple[int, str, str, Optional[int]]]] = {}
        self.seq = 0
        self.running = asyncio.Event()
        self.running.set()
        self.stall_until = 0.0
        self.reject_until = 0.0
        self.reject_status = 429
        self.snapshot_delay = config.snapshot_delay
        self.fail_subscribes: Deque[int] = deque()
        self.muted = 0  # subscriptions silently stopped (stop_publishing)
        self.connections_accepted = 0
        self.handshakes_rejected = 0
        self.messages_published = 0
        self._closers: Set[asyncio.Task[None]] = set()

    # ----- handshake and connection lifecycle -------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Optional[Response]:
        remaining = self.reject_until - time.monotonic()
        if remaining > 0:
            self.handshakes_rejected += 1
            response = connection.respond(self.reject_status, "Too Many Requests\n")
            if self.reject_status == 429:
                response.headers["Retry-After"] = str(max(1, math.ceil(remaining)))
            return response
        return None

    async def handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws, self.config)
        self.conns[conn.id] = conn
        self.connections_accepted += 1
        if not self.running.is_set():
            ws.transport.pause_reading()
        conn.send(dumps({"type": "connected", "connection_id": conn.id, "message_id": 0}))
        writer = asyncio.ensure_future(self._writer(conn))
        heartbeat = asyncio.ensure_future(self._heartbeat(conn))
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                try:
                    self.handle_text(conn, text)
                except Exception:
                    log.exception("message handler failed")
                    conn.error("Internal error")
        except ConnectionClosed:
            pass
        finally:
            conn.closing = True
            self._drop_all(conn)
            self.conns.pop(conn.id, None)
            heartbeat.cancel()
            for task in list(conn.tasks):
                task.cancel()
            if not writer.done():
                writer.cancel()
            await asyncio.gather(writer, heartbeat, *conn.tasks, return_exceptions=True)

    async def _writer(self, conn: Conn) -> None:
        ws = conn.ws
        try:
            while True:
                await conn.wake.wait()
                while conn.queue:
                    if not self.running.is_set():
                        await self.running.wait()
                    item = conn.queue.popleft()
                    if isinstance(item, str):
                        await ws.send(item)
                    else:
                        await ws.close(item.code, item.reason)
                        return
                conn.wake.clear()
        except ConnectionClosed:
            pass

    async def _heartbeat(self, conn: Conn) -> None:
        interval, timeout = self.config.heartbeat_interval, self.config.heartbeat_timeout
        try:
            while True:
                await asyncio.sleep(interval)
                await self.running.wait()
                # Empty payload as node's ws.ping(); reuse a ping still unanswered after a stall.
                pending = conn.ws.pending_pings.get(b"")
                pong = pending[0] if pending is not None else await conn.ws.ping(b"")
                try:
                    await asyncio.wait_for(asyncio.shield(pong), timeout)
                except asyncio.TimeoutError:
                    if not self.running.is_set() or conn.ws.transport.is_closing():
                        continue
                    log.info("heartbeat timeout on %s", conn.id)
                    conn.closing = True
                    conn.queue.clear()
                    # Like ws' close(): TCP stays open until the client answers the close frame
                    # (bounded by heartbeat_close_timeout), however long its reads are stuck.
                    conn.ws.close_timeout = self.config.heartbeat_close_timeout
                    conn.hb_closing = True
                    await conn.ws.close(1011, "Heartbeat timeout")
                    return
        except ConnectionClosed:
            pass
        except Exception as exc:  # e.g. ConcurrencyError if a stalled pong is still pending
            log.debug("heartbeat ended on %s: %r", conn.id, exc)

    # ----- the validation pipeline (docs/protocol.md §2.4) ------------------------------------

    def _invalid(self, conn: Conn, message: str) -> None:
        if conn.invalid_limiter.hit("invalidMessage"):
            conn.error("Too many invalid messages. Please reconnect and try again.")
            conn.close_after_pending(1008, RATE_LIMITED)
        else:
            conn.error(message)

    def handle_text(self, conn: Conn, text: str) -> None:
        if conn.closing:
            return
        try:
            msg = json.loads(text, parse_constant=_reject_js_constant)
        except ValueError:
            self._invalid(conn, "Invalid message: could not parse")
            return
        if msg is None:
            conn.error("Internal error")
            return
        mtype = msg.get("type", UNDEFINED) if isinstance(msg, dict) else UNDEFINED
        if not truthy(mtype):
            self._invalid(conn, "Invalid message: type is required")
            return
        if not (isinstance(mtype, str) and mtype in ("subscribe", "unsubscribe", "ping")):
            self._invalid(conn, f"Invalid message type: {js_string(mtype)}")
            return
        if mtype == "ping":
            return
        channel = msg.get("channel", UNDEFINED)
        if not truthy(channel):
            conn.error("Invalid subscribe message: channel is required")
            return
        if not (isinstance(channel, str) and channel in CHANNELS):
            conn.error(f"Invalid channel: {js_string(channel)}")
            return
        raw_id = msg.get("id", UNDEFINED)
        if channel not in (MARKETS, BLOCK_HEIGHT) and not isinstance(raw_id, str):
            conn.error(f"Invalid id: {js_string(raw_id)}")
            return
        if mtype == "unsubscribe":
            self._unsubscribe(conn, channel, raw_id)
        else:
            self._subscribe(conn, channel, raw_id, truthy(msg.get("batched", UNDEFINED)))

    def _known_ticker(self, ticker: str) -> bool:
        """In socks' market cache: listed (delisted ones stay), and past ``listing_delay``."""
        state = self.comlink.sim.markets.get(ticker)
        return state is not None and (state.known_at <= 0 or state.known_at <= time.monotonic())

    def _valid_id(self, channel: str, raw_id: Any) -> bool:
        if channel in (MARKETS, BLOCK_HEIGHT):
            return True
        sub_id: str = raw_id
        if channel in ("v4_trades", "v4_orderbook"):
            return self._known_ticker(sub_id)
        if channel == "v4_candles":
            parts = sub_id.split("/")
            return len(parts) >= 2 and self._known_ticker(parts[0]) and parts[1] in RESOLUTIONS
        parts = sub_id.split("/")
        if len(parts) != 2:
            return False
        number = js_number(parts[1])
        return not math.isnan(number) and number < SUBACCOUNT_LIMITS[channel]

    def _subscribe(self, conn: Conn, channel: str, raw_id: Any, batched: bool) -> None:
        """docs/protocol.md §2.5: allocate ``message_id``, admit, fetch, then register. The checks
        before the fetch answer at once; the fetch takes ``fetch_latency`` (as socks' HTTP call to
        comlink does), so ``subscribed`` and the errors after it come later."""
        message_id = conn.next_id()
        sub_id = normalize_id(channel, raw_id)
        conn.inflight[channel] = conn.inflight.get(channel, 0) + 1
        try:
            self._admit(conn, channel, raw_id, sub_id)
        except _SubscribeFailed as exc:
            conn.inflight[channel] -= 1
            self._refuse(conn, channel, raw_id, message_id, exc)
            return
        except BaseException:  # row 13: the caller answers "Internal error"
            conn.inflight[channel] -= 1
            raise
        if self.config.fetch_latency > 0 or self.snapshot_delay > 0:
            conn.spawn(self._fetch_later(conn, channel, raw_id, batched, message_id))
            return
        try:
            contents = self._snapshot(channel, sub_id)
        except _SubscribeFailed as exc:
            self._refuse(conn, channel, raw_id, message_id, exc)
            return
        finally:
            conn.inflight[channel] -= 1
        self._finish(conn, channel, raw_id, batched, message_id, contents)

    def _refuse(
        self, conn: Conn, channel: str, raw_id: Any, message_id: int, exc: _SubscribeFailed
    ) -> None:
        if exc.detailed:
            conn.error(exc.message, channel, error_id(raw_id), message_id)
        else:
            conn.error(exc.message, message_id=message_id)
        if exc.rate_limited:
            conn.close_after_pending(1008, RATE_LIMITED)

    def _admit(self, conn: Conn, channel: str, raw_id: Any, sub_id: str) -> None:
        """Rows 8-10 of docs/protocol.md §2.4 in socks' order (before the fetch)."""
        if not self._valid_id(channel, raw_id):
            raise _SubscribeFailed(
                f"Invalid subscription id for channel: ({channel}-{js_string(raw_id)})"
            )
        limit = self.config.channel_limits.get(channel, 32)
        count = sum(1 for c, _ in conn.subs if c == channel) + conn.inflight[channel]
        if count > limit:
            raise _SubscribeFailed(
                f"Per-connection subscription limit reached for {channel} (limit={limit})."
            )
        if conn.sub_limiter.hit(channel + sub_id):
            raise _SubscribeFailed(
                f"Too many subscribe attempts for channel {channel}-{sub_id}. "
                "Please  reconnect and try again.",
                rate_limited=True,
            )

    async def _fetch_later(
        self, conn: Conn, channel: str, raw_id: Any, batched: bool, message_id: int
    ) -> None:
        """The fetch after ``fetch_latency``; registration ``snapshot_delay`` after it."""
        try:
            await asyncio.sleep(self.config.fetch_latency)
            if conn.closing:
                return
            try:
                contents = self._snapshot(channel, normalize_id(channel, raw_id))
            except _SubscribeFailed as exc:
                self._refuse(conn, channel, raw_id, message_id, exc)
                return
            if self.snapshot_delay > 0:
                await asyncio.sleep(self.snapshot_delay)
        finally:
            conn.inflight[channel] -= 1
        if not conn.closing:
            self._finish(conn, channel, raw_id, batched, message_id, contents)

    def _finish(
        self, conn: Conn, channel: str, raw_id: Any, batched: bool, message_id: int, contents: str
    ) -> None:
        """Row 12 (duplicate), then register and send ``subscribed`` (built as a string,
        docs/protocol.md §1.4)."""
        sub_id = normalize_id(channel, raw_id)
        key = (channel, sub_id)
        if key in conn.subs:
            conn.error(
                f"Invalid subscribe message: already subscribed ({channel}-{sub_id})",
                channel,
                error_id(raw_id),
                message_id,
            )
            return
        sub = Sub(channel, sub_id, batched, self.seq)
        conn.subs[key] = sub
        if batched:
            self.batched.setdefault(key, {})[conn.id] = (conn, sub)
        else:
            self.unbatched.setdefault(key, {})[conn.id] = conn
        id_part = "" if channel == MARKETS else f',"id":"{sub_id}"'
        conn.send(
            f'{{"type":"subscribed","connection_id":"{conn.id}","message_id":{message_id},'
            f'"channel":"{channel}"{id_part},"contents":{contents}}}'
        )

    def _unsubscribe(self, conn: Conn, channel: str, raw_id: Any) -> None:
        message_id = conn.next_id()
        self._drop(conn, (channel, normalize_id(channel, raw_id)))
        body: Dict[str, Any] = {
            "type": "unsubscribed",
            "connection_id": conn.id,
            "message_id": message_id,
            "channel": channel,
        }
        if channel != MARKETS and raw_id is not UNDEFINED:
            body["id"] = raw_id
        conn.send(dumps(body))

    def _drop(self, conn: Conn, key: Tuple[str, str]) -> None:
        sub = conn.subs.pop(key, None)
        if sub is None:
            return
        registry: Dict[Tuple[str, str], Any] = self.batched if sub.batched else self.unbatched
        members = registry.get(key)
        if members is not None:
            members.pop(conn.id, None)
            if not members:
                del registry[key]

    def _drop_all(self, conn: Conn) -> None:
        for key in list(conn.subs):
            self._drop(conn, key)

    # ----- initial data, fetched from comlink as socks does -----------------------------------

    def _get(self, target: str) -> Tuple[int, str]:
        response = self.comlink.get(target)
        return response.status, response.body

    def _snapshot(self, channel: str, sub_id: str) -> str:
        failure = self.fail_subscribes.popleft() if self.fail_subscribes else None
        internal = f"Internal error, could not fetch data for subscription: {channel}."
        if failure is not None:
            raise _SubscribeFailed(BLOCKED_TEXT if failure == 403 else internal, detailed=True)
        if channel in ("v4_subaccounts", "v4_parent_subaccounts"):
            return self._account_snapshot(channel, sub_id, internal)
        if channel == MARKETS:
            target = "/v4/perpetualMarkets"
        elif channel == BLOCK_HEIGHT:
            target = "/v4/height"
        elif channel == "v4_trades":
            target = f"/v4/trades/perpetualMarket/{quote(sub_id, safe='')}"
        elif channel == "v4_orderbook":
            target = f"/v4/orderbooks/perpetualMarket/{quote(sub_id, safe='')}"
        else:
            ticker, resolution = sub_id.split("/")[:2]
            target = (
                f"/v4/candles/perpetualMarkets/{quote(ticker, safe='')}"
                f"?resolution={quote(resolution, safe='')}"
            )
        status, body = self._get(target)
        if status == 403:
            raise _SubscribeFailed(BLOCKED_TEXT, detailed=True)
        if status != 200:
            raise _SubscribeFailed(internal, detailed=True)
        return body

    def _account_snapshot(self, channel: str, sub_id: str, internal: str) -> str:
        address, number = (quote(part, safe="") for part in sub_id.split("/"))
        height = self.comlink.sim.height
        if channel == "v4_subaccounts":
            account = f"/v4/addresses/{address}/subaccountNumber/{number}"
            orders = f"/v4/orders?address={address}&subaccountNumber={number}"
        else:
            account = f"/v4/addresses/{address}/parentSubaccountNumber/{number}"
            orders = (
                f"/v4/orders/parentSubaccountNumber?address={address}"
                f"&parentSubaccountNumber={number}"
            )
        results = [
            self._get(account),
            self._get(orders + "&status=OPEN,UNTRIGGERED,BEST_EFFORT_OPENED"),
            self._get(
                orders + f"&status=BEST_EFFORT_CANCELED&goodTilBlockAfter={max(height - 20, 1)}"
            ),
        ]
        statuses = [status for status, _ in results]
        if 404 in statuses:
            return "{}"
        if 403 in statuses:
            raise _SubscribeFailed(BLOCKED_TEXT, detailed=True)
        if any(status != 200 for status in statuses):
            raise _SubscribeFailed(internal, detailed=True)
        contents = dict(json.loads(results[0][1]))
        contents["orders"] = json.loads(results[1][1]) + json.loads(results[2][1])
        contents["blockHeight"] = str(height)
        return dumps(contents)

    # ----- delivery ---------------------------------------------------------------------------

    def publish(self, pub: Publication) -> None:
        """Deliver one producer message to every subscriber of ``(channel, id)``."""
        key = (pub.channel, pub.id)
        direct = self.unbatched.get(key)
        batched = self.batched.get(key)
        if not direct and not batched:
            return
        self.seq += 1
        self.messages_published += 1
        contents = dumps(pub.contents)
        version = VERSIONS[pub.channel]
        suffix = (
            "" if pub.subaccount_number is None else f',"subaccountNumber":{pub.subaccount_number}'
        )
        if direct:
            tail = _data_tail(pub.channel, pub.id, version, contents, suffix)
            for conn in direct.values():
                if self.muted and conn.subs[key].muted:
                    continue
                conn.send(f"{conn.data_prefix}{conn.next_id()}{tail}")
        if batched:
            self.buffer.setdefault(key, []).append(
                (self.seq, version, contents, pub.subaccount_number)
            )

    def flush_batches(self) -> None:
        """The global ``BATCH_SEND_INTERVAL_MS`` flush: one message per (version, child) group."""
        buffer, self.buffer = self.buffer, {}
        for key, items in buffer.items():
            members = self.batched.get(key)
            if not members:
                continue
            channel, sub_id = key
            for conn, sub in list(members.values()):
                if sub.muted:
                    continue
                groups: Dict[str, Dict[Optional[int], List[str]]] = {}
                for seq, version, contents, number in items:
                    if seq > sub.start_seq:
                        groups.setdefault(version, {}).setdefault(number, []).append(contents)
                for version, by_number in groups.items():
                    for number, contents_list in by_number.items():
                        suffix = "" if number is None else f',"subaccountNumber":{number}'
                        tail = _data_tail(
                            channel, sub_id, version, "[" + ",".join(contents_list) + "]", suffix
                        )
                        conn.send(f"{conn.batch_prefix}{conn.next_id()}{tail}")

    def send_raw(self, text: str) -> int:
        for conn in self.conns.values():
            conn.send(text)
        return len(self.conns)

    # ----- faults -----------------------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self.stall_until = max(self.stall_until, time.monotonic() + seconds)
        if self.running.is_set():
            self.running.clear()
            for conn in self.conns.values():
                if not conn.ws.transport.is_closing():
                    conn.ws.transport.pause_reading()
        loop.call_later(seconds, self._maybe_unstall)

    def _maybe_unstall(self) -> None:
        if time.monotonic() + 0.001 >= self.stall_until:
            self.unstall()

    def unstall(self) -> None:
        if self.running.is_set():
            return
        self.stall_until = 0.0
        self.running.set()
        for conn in self.conns.values():
            if not conn.ws.transport.is_closing():
                conn.ws.transport.resume_reading()

    def stop_publishing(self, channel: str, sub_id: Optional[str]) -> int:
        """The server's silent stop: every current subscription of ``channel`` (and ``sub_id``;
        None: all of the channel) stays registered, but nothing more is sent for it. A new
        subscribe of the same topic streams again. Returns how many were stopped."""
        count = 0
        for conn in self.conns.values():
            for (c, i), sub in conn.subs.items():
                if c == channel and (sub_id is None or i == sub_id) and not sub.muted:
                    sub.muted = True
                    count += 1
        self.muted += count
        return count

    def abort_closing(self) -> None:
        """Shutdown: connections already closing (still waiting for the client's answer to a
        close frame, or for its TCP close) are cut, so stopping never waits for a dead peer."""
        for conn in self.conns.values():
            if conn.closing or conn.ws.state is State.CLOSING:
                conn.ws.transport.abort()

    async def drop(
        self, code: Optional[int], reason: str, connection_id: Optional[str] = None
    ) -> int:
        """Close every connection (or the one of ``connection_id``); returns once the close
        frames are written (or TCP aborted). ``code`` None or 1006 ("closed without a close
        frame") aborts TCP."""
        conns = [c for c in self.conns.values() if connection_id in (None, c.id)]
        for conn in conns:
            conn.closing = True
            conn.queue.clear()
            if code is None or code == 1006:
                conn.ws.transport.abort()
            else:
                task = asyncio.ensure_future(conn.ws.close(code, reason))
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)
        # close() writes its frame in its first step, then waits for the handshake: wait only
        # until every frame is out (bounded, in case a transport is already gone)
        for _ in range(1000):
            if all(
                conn.ws.protocol.close_sent is not None or conn.ws.state is State.CLOSED
                for conn in conns
            ):
                break
            await asyncio.sleep(0)
        return len(conns)

    def subscriptions(self) -> List[Tuple[str, str, str]]:
        return [
            (conn.id, channel, sub_id)
            for conn in self.conns.values()
            for (channel, sub_id) in conn.subs
        ]

    def queued(self) -> int:
        return sum(len(conn.queue) for conn in self.conns.values()) + len(self.buffer)
