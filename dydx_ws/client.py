"""``DydxWebSocketClient``: the public, synchronous face of the SDK.

Architecture (see README "Threading model")::

    user threads --subscribe_*/unsubscribe/stop--> client (registry, lock)
                                                     |  text frames, paced
                                                     v
    I/O thread "dydx-ws-io" (connection.py) --frame--> decode_message --> control frames handled
                                                     |                    here (acks, errors)
                                   Dispatcher.submit((channel, id), message)
                                                     v
    worker threads "dydx-ws-worker-N" (dispatch.py): apply to local state, then call callbacks

The client owns the glue: it matches acknowledgements and server errors to subscriptions,
restores every subscription after a reconnect, marks books stale while disconnected, resyncs a
subscription whose messages were dropped, and reports everything through ``on(...)`` events and
``stats()``. It never runs user code on the I/O thread.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from types import TracebackType
from typing import Any, Callable, Dict, Hashable, List, Optional, Set, Tuple, Type, Union

from .backfill import TradeBackfill
from .connection import CloseInfo, Connection, ConnectionOptions, proxy_options
from .decode import CHANNELS, decode_message
from .dispatch import Dispatcher, OverflowPolicy
from .errors import DecodeError, DydxConnectionError, DydxWsError
from .events import ConnectedEvent, DisconnectedEvent, ErrorEvent, EventHub, ReconnectedEvent
from .messages import (
    BlockHeightMessage,
    ConnectedMessage,
    ErrorMessage,
    MarketsMessage,
    Message,
    OrderbookMessage,
    SubaccountMessage,
    TradesMessage,
    UnsubscribedMessage,
)
from .network import Network
from .notebook import status_html, track
from .orderbook import OrderBook
from .reconnect import ReconnectPolicy
from .rest import IndexerRestClient
from .resync import DriftRepair
from .state import MarketsState, ParentSubaccountState, SubaccountState
from .subscriptions import (
    RETRYABLE_PREFIX,
    Callback,
    Key,
    Subscription,
    SubscriptionRegistry,
    SubscriptionState,
    Topic,
)
from .validation import (
    validate_address,
    validate_resolution,
    validate_subaccount_number,
    validate_ticker,
)

__all__ = ["DydxWebSocketClient"]

log = logging.getLogger("dydx_ws.client")

_EVENTS_KEY: Hashable = ("__events__", None)
# An idle worker is woken once this many messages wait for it, or when the I/O thread runs out
# of buffered input (Connection calls on_idle before blocking): one wake-up per burst, not per
# frame (a wake-up per frame costs a thread switch and halved throughput in measurements).
_WAKE_BATCH = 32
_RESTORE_DEADLINE = 15.0  # seconds to wait for every resubscription before "reconnected"
_MAX_FETCH_RETRIES = 10  # "Internal error, could not fetch data" retries before failing
_RESYNC_MIN_INTERVAL = 2.0  # seconds between two overflow resyncs of one subscription
_ACCOUNT_CHANNELS = ("v4_subaccounts", "v4_parent_subaccounts")
_ID_IN_TEXT = re.compile(r"\((v4_[a-z_]+)-(.*)\)")
_CHANNEL_IN_TEXT = re.compile(r"\b(v4_[a-z_]+)\b")


class DydxWebSocketClient:
    """A threaded, synchronous dYdX v4 Indexer WebSocket client.

    ``start()`` returns at once; subscriptions may be made before or after it, connected or not.
    Callbacks receive one typed message per wire frame, in wire order per subscription, on a
    worker thread. Arguments:

    - ``network`` / ``url``: where to connect (``Network.MAINNET`` by default; ``url`` alone makes
      a custom network).
    - ``workers``: callback threads (subscriptions are spread over them; one subscription always
      runs on the same worker). ``queue_size``: pending messages per worker before ``overflow``
      applies (``"block"``: wait up to ``block_timeout`` then drop; ``"drop_oldest"``;
      ``"drop_newest"``). Every drop is counted, reported and the subscription resynced.
    - ``reconnect``: a :class:`ReconnectPolicy`. ``ping_interval``/``pong_timeout``: client ping
      frames that detect a silent or half-open link. ``connect_timeout``: TCP + TLS + handshake.
    - ``ca_bundle`` (a CA file) or ``sslopt`` (websocket-client TLS options); certificates are
      verified by default. ``proxy``: ``http://[user:pw@]host:port`` or ``socks5://host:port``.
    - ``batched``: default ``batched`` flag of subscriptions (per-call ``batched=`` overrides).
    - ``uncross``: order book uncross policy (``"message_id"``, ``"size"``, ``"none"``).
    - ``check_interval``: seconds between drift checks of books, markets and accounts against the
      REST API (:mod:`dydx_ws.resync`; ``None`` or 0 turns them off); ``confirm_delay``: how long
      a difference must persist to count as drift. ``rest``: the :class:`IndexerRestClient` to use
      (default: one for ``network.rest_url``, closed by ``stop()``).
    """

    def __init__(
        self,
        network: Optional[Network] = None,
        *,
        url: Optional[str] = None,
        workers: int = 4,
        queue_size: int = 10_000,
        overflow: Union[OverflowPolicy, str] = OverflowPolicy.BLOCK,
        block_timeout: float = 1.0,
        reconnect: Optional[ReconnectPolicy] = None,
        ping_interval: float = 20.0,
        pong_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        ca_bundle: Optional[str] = None,
        sslopt: Optional[Dict[str, Any]] = None,
        proxy: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        batched: bool = False,
        uncross: str = "message_id",
        rest: Optional[IndexerRestClient] = None,
        check_interval: Optional[float] = 60.0,
        confirm_delay: float = 1.0,
    ) -> None:
        if url is not None:
            network = Network.custom(url, network.rest_url if network else "")
        self.network: Network = network or Network.MAINNET
        if ping_interval < 0 or pong_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("ping_interval must be >= 0, pong_timeout and connect_timeout > 0")
        self._options = ConnectionOptions(
            url=self.network.ws_url,
            reconnect=reconnect or ReconnectPolicy(),
            ping_interval=ping_interval,
            pong_timeout=pong_timeout,
            connect_timeout=connect_timeout,
            sslopt=_tls_options(self.network.ws_url, ca_bundle, sslopt),
            proxy=proxy_options(proxy),
            headers=headers,
        )
        self._default_batched = bool(batched)
        self._uncross = uncross
        OrderBook("CHECK-USD", uncross=uncross)  # validates the policy name now, not later
        self._lock = threading.RLock()
        self._registry = SubscriptionRegistry(self._on_last_release)
        self._dispatcher = Dispatcher(
            self._deliver,
            workers=workers,
            queue_size=queue_size,
            overflow=OverflowPolicy(overflow),
            block_timeout=block_timeout,
            on_drop=self._on_drop,
            on_handler_error=self._on_worker_error,
            wake_batch=_WAKE_BATCH,
        )
        self._connection = Connection(self._options, self)
        self._events = EventHub()
        self._books: Dict[str, OrderBook] = {}
        self._markets = MarketsState()
        self._accounts: Dict[Key, Union[SubaccountState, ParentSubaccountState]] = {}
        # connection bookkeeping (I/O thread, under _lock where user threads also read it)
        self._ready = False
        self._started = False
        self._stopping = False
        self._stopped = threading.Event()
        self._connection_id: Optional[str] = None
        self._opens = 0
        self._attempts = 0
        self._closed_at: Optional[float] = None
        self._restoring: Set[Key] = set()
        self._restore_deadline = 0.0
        self._restore_report: Optional[Tuple[float, int]] = None  # (gap, attempts)
        self._last_resync: Dict[Key, float] = {}
        self._counters: Dict[str, int] = {
            "frames": 0,
            "decode_errors": 0,
            "server_errors": 0,
            "unrouted": 0,
            "dropped": 0,
            "resyncs": 0,
            "callback_errors": 0,
            "reconnects": 0,
            "connect_failures": 0,
        }
        self._per_channel: Dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self._drops_by_key: Dict[Key, int] = {}
        self._lag: Dict[Key, float] = {}
        self._frame_taps: Tuple[Callable[[Any, float], None], ...] = ()
        self._backfill: Dict[Key, TradeBackfill] = {}
        self._owns_rest = rest is None and bool(self.network.rest_url)
        self.rest: Optional[IndexerRestClient] = rest
        if self._owns_rest:
            self.rest = IndexerRestClient(self.network, timeout=5.0, retries=1)
        self._drift: Optional[DriftRepair] = None
        if check_interval and self.rest is not None:
            self._drift = DriftRepair(
                self, self.rest, interval=check_interval, confirm_delay=confirm_delay
            )
        track(self)  # in a notebook: stop the client this cell created on its previous run

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, connect: bool = True) -> DydxWebSocketClient:
        """Start the I/O thread and the workers; returns at once (idempotent).

        ``connect=False`` starts only the workers: frames are then fed through :meth:`on_frame`
        by a replay (:mod:`dydx_ws.replay`) instead of a socket.
        """
        with self._lock:
            if self._stopping:
                raise DydxWsError("this client was stopped; create a new one")
            if self._started:
                return self
            self._started = True
        self._dispatcher.start()
        if connect:
            self._connection.start()
            if self._drift is not None:
                self._drift.start()
        return self

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """True once connected (False on timeout)."""
        return self._connection.connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connection.connected.is_set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Close the connection and join every thread within ``timeout`` seconds.

        Idempotent and safe from callbacks. Returns True if every thread has exited.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            first = not self._stopping
            self._stopping = True
            self._ready = False
        if not first:
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
            return self._stopped.is_set() and not self._dispatcher.leaked_threads()
        io_done = self._connection.stop(max(0.0, deadline - time.monotonic()))
        drift_done = True
        if self._drift is not None:
            if self._owns_rest and self.rest is not None:
                self.rest.close()  # cuts short a REST call or retry wait in progress
            drift_done = self._drift.stop(max(0.0, deadline - time.monotonic()))
        elif self._owns_rest and self.rest is not None:
            self.rest.close()
        workers_done = self._dispatcher.stop(max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        if not io_done:
            log.warning("the I/O thread did not exit within %.1f s", timeout)
        return io_done and drift_done and workers_done

    def run_forever(self) -> None:
        """Start (if needed) and block until ``stop()`` is called or Ctrl-C; then stop."""
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("interrupted: stopping")
        finally:
            self.stop()

    def __enter__(self) -> DydxWebSocketClient:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def on(self, event: str, callback: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``callback(event_object)`` on ``"connected"``, ``"disconnected"``,
        ``"reconnected"``, ``"error"`` or ``"resync"``; returns a function that removes it."""
        return self._events.add(event, callback)

    # -- subscriptions --------------------------------------------------------------------------
    def subscribe_trades(
        self,
        ticker: str,
        callback: Optional[Callback] = None,
        *,
        batched: Optional[bool] = None,
        backfill: bool = False,
    ) -> Subscription:
        """Public trades of one market (``v4_trades``).

        ``backfill=True``: after a gap (reconnect or resync) the trades the stream missed are
        delivered first, oldest first and deduplicated, as a message with ``backfilled=True``.
        """
        ticker = validate_ticker(ticker)
        params = {"ticker": ticker, "backfill": bool(backfill)}
        handle = self._subscribe("v4_trades", ticker, callback, batched, params)
        if backfill:
            with self._lock:
                self._backfill.setdefault(handle.key, TradeBackfill(ticker, self.rest))
        return handle

    def subscribe_orderbook(
        self, ticker: str, callback: Optional[Callback] = None, *, batched: Optional[bool] = None
    ) -> Subscription:
        """The order book of one market; ``message.book`` / ``order_book(ticker)`` is the local
        book after each frame."""
        ticker = validate_ticker(ticker)
        return self._subscribe("v4_orderbook", ticker, callback, batched, {"ticker": ticker})

    def subscribe_candles(
        self,
        ticker: str,
        resolution: Any,
        callback: Optional[Callback] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """Candles of one market and resolution (a :class:`CandleResolution` or ``"1MIN"``...)."""
        ticker = validate_ticker(ticker)
        res = validate_resolution(resolution)
        params = {"ticker": ticker, "resolution": res}
        return self._subscribe("v4_candles", f"{ticker}/{res}", callback, batched, params)

    def subscribe_markets(
        self, callback: Optional[Callback] = None, *, batched: Optional[bool] = None
    ) -> Subscription:
        """Every perpetual market (snapshot, trading diffs, oracle prices): ``client.markets``."""
        return self._subscribe("v4_markets", None, callback, batched, {})

    def subscribe_subaccount(
        self,
        address: str,
        subaccount_number: int = 0,
        callback: Optional[Callback] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """One subaccount (orders, fills, positions, transfers): ``client.subaccount(a, n)``."""
        address = validate_address(address)
        number = validate_subaccount_number(subaccount_number, parent=False)
        params = {"address": address, "subaccount_number": number}
        return self._subscribe("v4_subaccounts", f"{address}/{number}", callback, batched, params)

    def subscribe_parent_subaccount(
        self,
        address: str,
        parent_subaccount_number: int = 0,
        callback: Optional[Callback] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """A parent subaccount (< 128) and all its children (isolated positions)."""
        address = validate_address(address)
        number = validate_subaccount_number(parent_subaccount_number, parent=True)
        params = {"address": address, "subaccount_number": number}
        wire_id = f"{address}/{number}"
        return self._subscribe("v4_parent_subaccounts", wire_id, callback, batched, params)

    def subscribe_block_height(
        self, callback: Optional[Callback] = None, *, batched: Optional[bool] = None
    ) -> Subscription:
        """Every new block's height and time."""
        return self._subscribe("v4_block_height", None, callback, batched, {})

    def subscriptions(self) -> List[Subscription]:
        """Every live subscription handle."""
        return [h for t in self._registry.topics() for h in self._registry.handles(t.key)]

    def _subscribe(
        self,
        channel: str,
        wire_id: Optional[str],
        callback: Optional[Callback],
        batched: Optional[bool],
        params: Dict[str, Any],
    ) -> Subscription:
        if callback is not None and not callable(callback):
            raise ValueError("callback must be callable")
        topic = Topic(channel, wire_id, self._default_batched if batched is None else batched)
        with self._lock:
            if self._stopping:
                raise DydxWsError("this client was stopped; create a new one")
            handle, is_new = self._registry.add(topic, callback, params)
            if is_new:
                self._create_state(topic)
                if self._ready:
                    self._send_subscribe(topic)
        return handle

    def _create_state(self, topic: Topic) -> None:
        channel, sid = topic.key
        if channel == "v4_orderbook" and sid not in self._books:
            assert sid is not None
            self._books[sid] = OrderBook(sid, uncross=self._uncross)
        elif channel in _ACCOUNT_CHANNELS and topic.key not in self._accounts:
            assert sid is not None
            address, number = sid.rsplit("/", 1)
            state: Union[SubaccountState, ParentSubaccountState]
            if channel == "v4_subaccounts":
                state = SubaccountState(address, int(number))
            else:
                state = ParentSubaccountState(address, int(number))
            state.set_price_source(self._markets)
            self._accounts[topic.key] = state

    def _send_subscribe(self, topic: Topic, delay: float = 0.0) -> None:
        self._connection.send(topic.subscribe_text(), key=topic.key, subscribe=True, delay=delay)

    def _on_last_release(self, topic: Topic) -> None:
        with self._lock:
            if self._ready:
                self._connection.send(topic.unsubscribe_text(), key=topic.key)
            channel, sid = topic.key
            if channel == "v4_orderbook":
                self._books.pop(sid or "", None)
            self._accounts.pop(topic.key, None)
            self._backfill.pop(topic.key, None)
            self._restoring.discard(topic.key)
        self._dispatcher.release(topic.key)

    # -- local state ----------------------------------------------------------------------------
    def order_book(self, ticker: str) -> OrderBook:
        """The live local book of a subscribed market (``KeyError`` if not subscribed)."""
        book = self._books.get(ticker)
        if book is None:
            raise KeyError(f"no order book for {ticker!r}: call subscribe_orderbook({ticker!r})")
        return book

    @property
    def markets(self) -> Dict[str, Any]:
        """Ticker -> :class:`~dydx_ws.models.PerpetualMarket` (snapshot merged with updates)."""
        return self._markets.snapshot()

    @property
    def markets_state(self) -> MarketsState:
        return self._markets

    def subaccount(self, address: str, number: int = 0) -> SubaccountState:
        """The live view of a subscribed subaccount (``KeyError`` if not subscribed)."""
        state = self._accounts.get(("v4_subaccounts", f"{address}/{number}"))
        if not isinstance(state, SubaccountState):
            raise KeyError(f"no subaccount {address}/{number}: call subscribe_subaccount first")
        return state

    def parent_subaccount(self, address: str, number: int = 0) -> ParentSubaccountState:
        """The live view of a subscribed parent subaccount and its children."""
        state = self._accounts.get(("v4_parent_subaccounts", f"{address}/{number}"))
        if not isinstance(state, ParentSubaccountState):
            raise KeyError(f"no parent subaccount {address}/{number}: subscribe first")
        return state

    # -- stats ----------------------------------------------------------------------------------
    def stats(self) -> Dict[str, Any]:
        """Counters, queue depths, drops, reconnects, callback errors, lag and message ages."""
        now = time.time()
        subs = {}
        for topic in self._registry.topics():
            entry = self._registry.get(topic.key)
            if entry is None:
                continue
            last = entry.last_message_at
            subs[_label(topic.key)] = {
                "state": entry.state.value,
                "messages": entry.messages,
                "age_seconds": None if last is None else max(0.0, now - last),
                "drops": self._drops_by_key.get(topic.key, 0),
                "lag_seconds": self._lag.get(topic.key),
            }
        dispatch = self._dispatcher.stats()
        return {
            **self._counters,
            "connected": self.connected,
            "connection_id": self._connection_id,
            "url": self.network.ws_url,
            "bytes": self._connection.bytes_received,
            "messages_per_channel": dict(self._per_channel),
            "queue_depth": dispatch["depth"],
            "queue_depths": [w["depth"] for w in dispatch["workers"]],
            "dispatcher": dispatch,
            "drift_checks": self._drift.checks if self._drift else 0,
            "subscriptions": subs,
        }

    def __repr__(self) -> str:
        state = "connected" if self.connected else "connecting"
        if self._stopping:
            state = "stopped"
        elif not self._started:
            state = "not started"
        return (
            f"<DydxWebSocketClient {self.network.name} {state}, "
            f"{len(self._registry)} subscriptions>"
        )

    def _repr_html_(self) -> str:
        """A status card for notebooks (connection, subscriptions, counters)."""
        return status_html(self)

    def add_frame_tap(self, tap: Callable[[Any, float], None]) -> Callable[[], None]:
        """Call ``tap(raw_frame, received_at)`` on the I/O thread for every frame received,
        before it is decoded (e.g. :meth:`dydx_ws.replay.Recorder.write`). It must be quick and
        must not raise. Returns a function that removes it."""
        with self._lock:
            self._frame_taps = (*self._frame_taps, tap)

        def remove() -> None:
            with self._lock:
                self._frame_taps = tuple(t for t in self._frame_taps if t is not tap)

        return remove

    # -- ConnectionListener (I/O thread) -------------------------------------------------------
    def on_open(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._ready = True
            self._opens += 1
            reconnect = self._opens > 1
            topics = self._registry.mark_all_pending()
            for topic in topics:
                self._send_subscribe(topic)
            if reconnect:
                self._counters["reconnects"] += 1
                self._restoring = {t.key for t in topics}
                self._restore_deadline = now + _RESTORE_DEADLINE
                gap = now - self._closed_at if self._closed_at is not None else 0.0
                self._restore_report = (gap, self._attempts)
        self._emit("connected", ConnectedEvent(self.network.ws_url, reconnect, self._attempts))
        self._attempts = 0
        if reconnect:
            self._maybe_report_restored(now)

    def on_close(self, info: CloseInfo) -> None:
        with self._lock:
            self._ready = False
            self._closed_at = info.closed_at
            self._registry.mark_all_pending()
            books = list(self._books.values())
        for book in books:
            book.mark_stale()
        self._connection_id = None
        stopping = self._stopping
        self._emit("disconnected", DisconnectedEvent(info.code, info.reason, info.error, stopping))

    def on_retry(self, delay: float, attempt: int, info: CloseInfo) -> None:
        self._attempts = attempt
        if not info.was_open:
            self._counters["connect_failures"] += 1
            text = f"connect attempt {attempt} failed ({info.describe()}); retry in {delay:.2f} s"
            log.info(text)
            self._emit_error("connection", text, exception=info.error)

    def on_give_up(self, info: CloseInfo) -> None:
        text = f"giving up reconnecting: {info.describe()}"
        log.error(text)
        self._emit_error("connection", text, exception=DydxConnectionError(text))

    def on_idle(self) -> None:
        self._dispatcher.flush()

    def on_tick(self, now: float) -> None:
        if self._restore_report is not None:
            self._maybe_report_restored(now)

    def on_frame(self, data: Any, received_at: Optional[float] = None) -> None:
        """One raw frame in (I/O thread, or a replay): decode, match, dispatch."""
        self._counters["frames"] += 1
        if received_at is None:
            received_at = time.time()
        for tap in self._frame_taps:
            tap(data, received_at)
        try:
            msg = decode_message(data, received_at=received_at)
        except DecodeError as exc:
            self._counters["decode_errors"] += 1
            self._emit_error("decode", str(exc), channel=exc.channel, exception=exc, raw=data)
            return
        mtype = msg.type
        if mtype == "channel_data" or mtype == "channel_batch_data":
            self._route(msg)
        elif mtype == "subscribed":
            self._on_subscribed(msg)
        elif isinstance(msg, ErrorMessage):
            self._on_server_error(msg)
        elif isinstance(msg, ConnectedMessage):
            self._connection_id = msg.connection_id
        elif not isinstance(msg, UnsubscribedMessage):
            self._emit_error("decode", f"unknown message type {mtype!r}", raw=data)

    def _route(self, msg: Message) -> None:
        channel = msg.channel or ""
        key = (channel, msg.id)
        if self._registry.get(key) is None:
            self._counters["unrouted"] += 1  # in flight after an unsubscribe
            return
        self._per_channel[channel] = self._per_channel.get(channel, 0) + 1
        self._dispatcher.submit(key, msg)

    def _on_subscribed(self, msg: Message) -> None:
        key: Key = (msg.channel or "", msg.id)
        if not self._registry.confirm(key):
            # Subscribed after we unsubscribed (the unsubscribe raced the snapshot fetch):
            # end it again so the server does not stream what nobody wants.
            self._counters["unrouted"] += 1
            with self._lock:
                if self._ready and msg.channel:
                    wire_id = None if msg.channel in ("v4_markets", "v4_block_height") else msg.id
                    self._connection.send(Topic(msg.channel, wire_id, False).unsubscribe_text())
            return
        with self._lock:
            self._restoring.discard(key)
        self._route(msg)
        if self._restore_report is not None:
            self._maybe_report_restored(time.monotonic())

    def _on_server_error(self, msg: ErrorMessage) -> None:
        self._counters["server_errors"] += 1
        text = msg.message
        keys = self._keys_of_error(msg)
        channel, sid = keys[0] if keys else (msg.channel, msg.id)
        self._emit_error("server", text, channel=channel, id=sid, raw=msg)
        if text.startswith(RETRYABLE_PREFIX):
            for key in keys:
                self._retry_fetch(key, text)
        elif "already subscribed" in text:
            for key in keys:  # the server has it: treat as active (no new snapshot will come)
                self._registry.confirm(key)
        elif not text.startswith("Too many subscribe attempts"):  # that one closes the socket
            for key in keys:
                self._fail(key, text)

    def _keys_of_error(self, msg: ErrorMessage) -> List[Key]:
        """Which subscriptions a server error is about: its channel/id fields when present,
        else ``(channel-id)`` in the text, else the pending subscriptions of the named channel."""
        if msg.channel:
            key = (msg.channel, msg.id if msg.channel != "v4_markets" else None)
            return [key] if self._registry.get(key) is not None else []
        text = msg.message
        found = _ID_IN_TEXT.search(text)
        if found and found.group(1) in CHANNELS:
            channel, sid = found.group(1), found.group(2)
            key = (channel, None if channel == "v4_markets" else sid)
            return [key] if self._registry.get(key) is not None else []
        named = _CHANNEL_IN_TEXT.search(text)
        if named and named.group(1) in CHANNELS:
            pending = self._registry.pending_of_channel(named.group(1))
            if text.startswith("Per-connection subscription limit"):
                return pending[-1:]  # the newest one went over the limit
            return pending
        return []

    def _retry_fetch(self, key: Key, text: str) -> None:
        retries = self._registry.note_retry(key)
        entry = self._registry.get(key)
        if entry is None:
            return
        if retries > _MAX_FETCH_RETRIES:
            self._fail(key, text)
            return
        with self._lock:
            if self._ready:
                self._send_subscribe(entry.topic, delay=min(30.0, 2.0 ** (retries - 1)))

    def _fail(self, key: Key, text: str) -> None:
        topic = self._registry.fail(key, text)
        if topic is None:
            return
        with self._lock:
            self._restoring.discard(key)
        entry = self._registry.get(key)
        self._emit_error(
            "subscription",
            text,
            channel=key[0],
            id=key[1],
            exception=entry.error if entry is not None else None,
        )

    def _maybe_report_restored(self, now: float) -> None:
        with self._lock:
            report = self._restore_report
            if report is None or (self._restoring and now < self._restore_deadline):
                return
            self._restore_report = None
            unconfirmed = set(self._restoring)
            self._restoring = set()
            restored: List[Key] = []
            failed: List[Key] = []
            for topic in self._registry.topics():
                entry = self._registry.get(topic.key)
                ok = entry is not None and entry.state is SubscriptionState.ACTIVE
                (restored if ok and topic.key not in unconfirmed else failed).append(topic.key)
        gap, attempts = report
        self._emit("reconnected", ReconnectedEvent(restored, failed, gap, attempts))

    # -- dispatcher callbacks -------------------------------------------------------------------
    def _on_drop(self, key: Hashable, count: int) -> None:
        """Messages of ``key`` were dropped (I/O thread): count, report, resync."""
        self._counters["dropped"] += count
        typed: Key = key  # type: ignore[assignment]
        self._drops_by_key[typed] = self._drops_by_key.get(typed, 0) + count
        self._emit_error(
            "overflow",
            f"{count} message(s) dropped for {_label(typed)}: queue full; resyncing",
            channel=typed[0],
            id=typed[1],
        )
        self._resync(typed)

    def _resync(self, key: Key) -> None:
        """Re-subscribe on the wire so a fresh snapshot replaces state that missed messages."""
        now = time.monotonic()
        if now - self._last_resync.get(key, -1e9) < _RESYNC_MIN_INTERVAL:
            return
        entry = self._registry.get(key)
        if entry is None:
            return
        self._last_resync[key] = now
        self._counters["resyncs"] += 1
        if key[0] == "v4_orderbook":
            book = self._books.get(key[1] or "")
            if book is not None:
                book.mark_stale()
        with self._lock:
            if self._ready:
                self._connection.send(entry.topic.unsubscribe_text(), key=key)
                self._send_subscribe(entry.topic)

    def _on_worker_error(self, key: Hashable, item: object, exc: BaseException) -> None:
        log.error("internal error while delivering %s", key, exc_info=exc)

    def _deliver(self, key: Hashable, item: object) -> None:
        """Worker side: apply the message to local state, then call each handle's callback."""
        msg: Message = item  # type: ignore[assignment]
        typed: Key = key  # type: ignore[assignment]
        entry = self._registry.get(typed)
        if entry is None:
            return
        self._registry.count_message(entry, msg.received_at)
        try:
            self._apply_state(typed, msg)
        except Exception as exc:
            self._emit_error("state", f"could not apply {_label(typed)}: {exc}", exception=exc)
        filler = self._backfill.get(typed)
        if filler is not None and isinstance(msg, TradesMessage):
            missed = filler.before_delivery(msg)
            if missed is not None:
                self._call_back(typed, entry.handles, missed, only_backfill=True)
        self._call_back(typed, entry.handles, msg)

    def _call_back(
        self,
        key: Key,
        handles: List[Subscription],
        msg: Message,
        *,
        only_backfill: bool = False,
    ) -> None:
        """Run each handle's callback with ``msg``; errors are isolated and reported."""
        typed = key
        for handle in list(handles):
            callback = handle._callback
            if callback is None or (only_backfill and not handle.params.get("backfill")):
                continue
            try:
                callback(msg)
            except Exception as exc:
                self._counters["callback_errors"] += 1
                log.exception("callback for %s raised", _label(typed))
                self._emit_error(
                    "callback",
                    f"callback {getattr(callback, '__name__', callback)!r} raised {exc!r}",
                    channel=typed[0],
                    id=typed[1],
                    exception=exc,
                )

    def _apply_state(self, key: Key, msg: Message) -> None:
        if isinstance(msg, OrderbookMessage):
            book = self._books.get(key[1] or "")
            if book is not None:
                book.apply(msg)
                msg.book = book
        elif isinstance(msg, MarketsMessage):
            self._markets.apply(msg)
        elif isinstance(msg, SubaccountMessage):
            account = self._accounts.get(key)
            if account is not None:
                account.apply(msg)
        elif isinstance(msg, BlockHeightMessage):
            self._lag[key] = msg.received_at - msg.time.timestamp()

    # -- events ---------------------------------------------------------------------------------
    def _emit(self, name: str, event: Any) -> None:
        if self._events.has(name):
            self._dispatcher.call_soon(_EVENTS_KEY, lambda: self._events.run(name, event))

    def _emit_error(
        self,
        kind: str,
        message: str,
        *,
        channel: Optional[str] = None,
        id: Optional[str] = None,
        exception: Optional[BaseException] = None,
        raw: Any = None,
    ) -> None:
        log.debug("error event %s: %s", kind, message)
        self._emit("error", ErrorEvent(kind, message, channel, id, exception, raw))


def _label(key: Key) -> str:
    return key[0] if key[1] is None else f"{key[0]}/{key[1]}"


def _tls_options(
    url: str, ca_bundle: Optional[str], sslopt: Optional[Dict[str, Any]]
) -> Optional[Dict[str, Any]]:
    """Certificate verification on by default; a CA bundle or explicit ``sslopt`` may be given."""
    if not url.lower().startswith("wss://"):
        return sslopt
    options: Dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    options.update(sslopt or {})
    return options
