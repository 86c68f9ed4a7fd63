"""``DydxWebSocketClient``: the public, synchronous face of the SDK.

Architecture (README "Threading model")::

    user threads --subscribe_*/unsubscribe/stop--> DydxWebSocketClient (registry, lifecycle)
                                                      | text frames, paced
                                                      v
    I/O thread "dydx-ws-io" (transport/_connection.py) --frames--> Router (engine/_io_side.py):
                                                      | decode, acks and server errors,
                                                      | reconnect bookkeeping, re-subscribes
                              Dispatcher.submit((channel, id), message)  (engine/_worker_pool.py)
                                                      v
    workers "dydx-ws-worker-N" --> Delivery (engine/_worker_side.py): LocalState
                                   (state/_store.py), then callbacks
    thread "dydx-ws-resync" --> DriftRepair (engine/_drift_repair.py): local state vs REST

``engine/_pipeline.py`` creates those parts; this module validates arguments and holds the
user-facing API: subscribe_*, local state accessors, events, stats, :meth:`feed` and the
lifecycle. It never runs user code on the I/O thread.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import (
    AbstractSet,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    Union,
    overload,
)

from ._route_limits import DEFAULT_ROUTE_LIMITS
from ._shutdown import forget, remember
from .engine._cpu_placement import CpuSpec, parse_cpus, pin_threads
from .engine._groups import AllMarkets, SubscriptionGroup
from .engine._pipeline import NOT_STARTED, Pipeline
from .engine._pool import DEFAULT_GRACE
from .engine._subscriptions import Callback, Key, Subscription
from .engine._watchdog import DEFAULT_IDLE_LIMITS
from .engine._worker_pool import OverflowPolicy
from .engine._worker_side import label
from .errors import DydxWsError
from .events import Emitter
from .network import Network
from .notebook import status_html, track
from .protocol._channels import (
    BLOCK_HEIGHT,
    CANDLES,
    MARKETS,
    ORDERBOOK,
    PARENT_SUBACCOUNTS,
    SUBACCOUNTS,
    TRADES,
    Topic,
    channel,
)
from .protocol._messages import (
    BlockHeightMessage,
    CandlesMessage,
    MarketsMessage,
    Message,
    OrderbookMessage,
    ParentSubaccountMessage,
    SubaccountMessage,
    TradesMessage,
)
from .protocol._validation import (
    validate_address,
    validate_resolution,
    validate_subaccount_number,
    validate_ticker,
)
from .rest import IndexerRestClient
from .sinks.base import ClientContext, Sink, stop_sinks
from .state import MarketsState, ParentSubaccountState, SubaccountState
from .state._orderbook import OrderBook
from .transport._connection import CloseInfo
from .transport._options import (
    DEFAULT_MAX_HANDSHAKE_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    MIN_MAX_MESSAGE_SIZE,
    ConnectionOptions,
    check_proxy,
    tls_options,
)
from .transport._reconnect import ReconnectPolicy

__all__ = ["DydxWebSocketClient"]

log = logging.getLogger("dydx_ws.client")

#: Several markets: a list (tuple, set) of tickers, or ALL_MARKETS.
Markets = Union[AllMarkets, List[str], Tuple[str, ...], AbstractSet[str]]

_WAIT_SLICE = 0.1  # seconds: how often a wait looks whether the client stopped or gave up


class DydxWebSocketClient:
    """A threaded, synchronous dYdX v4 Indexer WebSocket client.

    ``start()`` returns at once; subscriptions may be made before or after it, connected or not.
    Callbacks receive one typed message per wire frame, in wire order per subscription, on a
    worker thread. Arguments:

    - ``network`` / ``url``: where to connect (``Network.MAINNET`` by default, or a name:
      ``"mainnet"``, ``"testnet"``, ``"local"``; ``url`` alone makes a custom network).
    - ``workers``: callback threads (subscriptions are spread over them; one subscription always
      runs on the same worker). ``queue_size``: pending messages per worker before ``overflow``
      applies (``"block"``: wait up to ``block_timeout`` then drop; ``"drop_oldest"``;
      ``"drop_newest"``). Every drop is counted, reported and the subscription re-subscribed.
    - ``reconnect``: a :class:`ReconnectPolicy`. ``ping_interval``/``pong_timeout``: client ping
      frames that detect a silent or half-open link (every wait for the server, even inside a
      frame, ends within ``ping_interval + pong_timeout``). ``connect_timeout``: one deadline
      for TCP, proxy, TLS and the whole HTTP upgrade.
    - ``max_message_size``: the largest message (frame, or fragmented message in total) accepted,
      checked on its declared length before it is buffered (default 64 MiB, at least 64 KiB);
      ``max_handshake_size``: the largest HTTP upgrade response (default 64 KiB). Over either,
      the connection is failed with an ``error`` event and reconnected.
    - ``fast_frames``: the receive fast path for complete, unfragmented data frames (default
      on); ``False`` parses every frame with the general, checking parser (slower; the same
      messages).
    - ``ca_bundle`` (a CA file) or ``sslopt`` (websocket-client TLS options); certificates are
      verified by default. ``proxy``: ``http://[user:pw@]host:port`` or ``socks5://host:port``.
    - ``batched``: default ``batched`` flag of subscriptions (per-call ``batched=`` overrides).
    - ``uncross``: order book uncross policy (``"message_id"``, ``"size"``, ``"none"``).
    - ``check_interval``: seconds between drift checks of books, markets and accounts against the
      REST API (drift repair, ``engine/_drift_repair.py``; ``None`` or 0 turns them off);
      ``confirm_delay``: how long a difference must persist to count as drift. ``rest``: the
      :class:`IndexerRestClient` to use (default: one for ``network.rest_url``, closed by
      ``stop()``).
    - ``idle_limits``: the idle watchdog (:mod:`dydx_ws.engine._watchdog`): per channel an
      :class:`~dydx_ws.engine._watchdog.IdleLimit` or ``(blocks, seconds)`` of silence after which a
      subscription the server stopped feeding is re-subscribed (``None``: off).
      ``rest_route_limits``: the per-route REST budget shared by drift repair and back-fill
      (:mod:`dydx_ws._route_limits`; default ``/v4/orders`` and ``/v4/fills`` 100 per 10 s, of
      which the SDK uses half; ``None``: off).
    - ``cpu_affinity``: where the SDK's own threads run (Linux). They share the GIL anyway, and
      one core spares the cache traffic of handing every message to another core (figures in
      bench/README.md). ``None`` (default): left to the operating system; ``"auto"``
      (opt-in): on the I/O thread's CPU once connected, released while that CPU is busy with
      other work; a CPU number or numbers: pinned there (:mod:`dydx_ws.engine._cpu_placement`).
    - ``max_connections``: the pool's cap (``None``, default: as many connections as the
      server's per-connection limits require; past a cap, ``subscribe_*`` raises
      :class:`~dydx_ws.SubscriptionError`). ``subscription_limits``: subscriptions per channel
      per connection (default: the server's, 32 per market channel; a refusal for a lower
      limit moves the subscription to another connection). ``connection_grace``: seconds an
      emptied extra connection stays open (:mod:`dydx_ws.engine._pool`).
    """

    def __init__(
        self,
        network: Union[Network, str, None] = None,
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
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_handshake_size: int = DEFAULT_MAX_HANDSHAKE_SIZE,
        fast_frames: bool = True,
        ca_bundle: Optional[str] = None,
        sslopt: Optional[Dict[str, Any]] = None,
        proxy: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        batched: bool = False,
        uncross: str = "message_id",
        rest: Optional[IndexerRestClient] = None,
        check_interval: Optional[float] = 60.0,
        confirm_delay: float = 1.0,
        cpu_affinity: Union[str, CpuSpec, None] = None,
        idle_limits: Optional[Mapping[str, Any]] = DEFAULT_IDLE_LIMITS,
        rest_route_limits: Optional[Mapping[str, Tuple[int, float]]] = DEFAULT_ROUTE_LIMITS,
        max_connections: Optional[int] = None,
        subscription_limits: Optional[Mapping[str, int]] = None,
        connection_grace: float = DEFAULT_GRACE,
    ) -> None:
        if isinstance(network, str):
            network = Network.from_name(network)  # "mainnet", "testnet", "local" or a ws(s) URL
        if url is not None:
            network = Network.custom(url, network.rest_url if network else "")
        self.network: Network = network or Network.MAINNET
        if ping_interval < 0 or pong_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("ping_interval must be >= 0, pong_timeout and connect_timeout > 0")
        if not isinstance(max_message_size, int) or max_message_size < MIN_MAX_MESSAGE_SIZE:
            raise ValueError(f"max_message_size must be an int >= {MIN_MAX_MESSAGE_SIZE}")
        if not isinstance(max_handshake_size, int) or max_handshake_size < 1024:
            raise ValueError("max_handshake_size must be an int >= 1024")
        if max_connections is not None and (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ValueError("max_connections must be None (as many as needed) or an int >= 1")
        if not (isinstance(connection_grace, (int, float)) and 0 <= connection_grace < 1e9):
            raise ValueError("connection_grace must be a number of seconds >= 0")
        options = ConnectionOptions(
            url=self.network.ws_url,
            reconnect=reconnect or ReconnectPolicy(),
            ping_interval=ping_interval,
            pong_timeout=pong_timeout,
            connect_timeout=connect_timeout,
            sslopt=tls_options(self.network.ws_url, ca_bundle, sslopt),
            proxy=check_proxy(proxy),
            headers=headers,
            max_message_size=max_message_size,
            max_handshake_size=max_handshake_size,
            fast_frames=bool(fast_frames),
        )
        auto_affinity = isinstance(cpu_affinity, str) and cpu_affinity == "auto"
        self._cpus = None if auto_affinity else parse_cpus(cpu_affinity)  # type: ignore[arg-type]
        self._default_batched = bool(batched)
        self._uncross = uncross
        self._sinks: List[Sink] = []
        self._stopped = threading.Event()
        self._owns_rest = rest is None and bool(self.network.rest_url)
        self.rest: Optional[IndexerRestClient] = rest
        if self._owns_rest:
            self.rest = IndexerRestClient(self.network, timeout=5.0, retries=1)
        try:
            self._engine = Pipeline(
                options=options,
                workers=workers,
                queue_size=queue_size,
                overflow=OverflowPolicy(overflow),
                block_timeout=block_timeout,
                uncross=uncross,
                idle_limits=idle_limits,
                rest=self.rest,
                rest_route_limits=rest_route_limits,
                check_interval=check_interval,
                confirm_delay=confirm_delay,
                auto_affinity=auto_affinity,
                subscription_limits=subscription_limits,
                max_connections=max_connections,
                connection_grace=float(connection_grace),
            )
        except BaseException:  # an invalid argument: the REST client made here is not kept
            if self._owns_rest and self.rest is not None:
                self.rest.close()
            raise
        # The parts this face uses (engine/_pipeline.py made them, in dependency order).
        self._lifecycle = self._engine.lifecycle
        self._lock = self._engine.lock
        self._counters = self._engine.counters
        self._state = self._engine.store
        self._registry = self._engine.registry
        self._events = self._engine.hub
        self._emitter = self._engine.emitter
        self._dispatcher = self._engine.pool
        self._router = self._engine.router  # the first connection's (feed() plays it)
        self._connections = self._engine.connections
        self._drift = self._engine.drift
        self._route_limiter = self._engine.route_limiter
        self._background_rest = self._engine.background_rest
        self._auto_affinity = self._engine.auto_affinity
        track(self)  # in a notebook: stop the client this cell created on its previous run

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, *, connect: bool = True) -> DydxWebSocketClient:
        """Start the I/O thread and the workers; returns at once (idempotent).

        ``connect=False`` starts only the workers: frames then come from :meth:`feed` (e.g. a
        replay, :mod:`dydx_ws.replay`) instead of a socket.
        """
        life = self._lifecycle
        with self._lock:
            if life.stopping:
                raise DydxWsError("this client was stopped; create a new one")
            if life.started:
                return self
            life.started = True
            life.connected_mode = connect
        remember(self)  # stopped at interpreter exit if the script never calls stop()
        if connect:
            log.info("connecting to %s", self.network.ws_url)
        self._engine.start(connect=connect)
        if self._cpus is not None:
            cpus = self._cpus
            pin_threads(cpus, self._engine.threads())
            self._connections.on_start = lambda thread: pin_threads(cpus, [thread])
        return self

    def feed(
        self, raw_frame: Any, *, received_at: Optional[float] = None, flush: bool = False
    ) -> Optional[Message]:
        """Hand one raw frame (text or bytes, as the server sent it) to the client as if it had
        arrived on the socket: decoded, matched to subscriptions, applied to local state and
        delivered to callbacks on the workers, exactly as live data. For replays
        (:mod:`dydx_ws.replay`) on a client started with ``start(connect=False)``; call it from
        one thread (it plays the I/O thread).

        ``received_at``: the receive time kept on the message (default: now). ``flush=True``
        wakes the workers at once (as the I/O thread does before it waits for input; without
        it they wake once a burst of messages is queued, or on :meth:`drain`). Returns the
        decoded message, or None when the frame could not be decoded (counted and reported
        as for live data). Raises :class:`DydxWsError` on a client that was not started, was
        started with a connection, or was stopped."""
        life = self._lifecycle
        if life.stopping:
            raise DydxWsError("this client was stopped; create a new one")
        if not life.started:
            raise DydxWsError(
                "feed() needs a client started without a connection: call "
                "client.start(connect=False) first"
            )
        if life.connected_mode:
            raise DydxWsError(
                "feed() is for a client started with start(connect=False); this "
                "one reads its frames from its own connection"
            )
        msg = self._router.on_frame(raw_frame, received_at)
        if flush:
            self._router.on_idle()
        return msg

    # Feeding a client from a source other than its socket (e.g. :class:`~dydx_ws.
    # RedisStreamClient`): the source's own link events, on the feeding thread.
    def feed_opened(self) -> None:
        """The fed source is reachable (again): every subscription waits for its snapshot and
        a ``connected`` event follows (``reconnect=True`` after :meth:`feed_closed`). Same
        conditions as :meth:`feed`."""
        self._check_fed()
        self._router.on_open()

    def feed_closed(self, error: Optional[BaseException] = None) -> None:
        """The fed source was lost: books are stale, subscriptions pending, and a
        ``disconnected`` event carries ``error``."""
        self._check_fed()
        self._router.on_close(CloseInfo(was_open=True, error=error, closed_at=time.monotonic()))

    def feed_gap(self, key: Key, reason: str) -> None:
        """Frames of subscription ``key`` (``(channel, id)``) were lost upstream of
        :meth:`feed`: its book is stale until the next snapshot, and the gap is counted
        (``resyncs``) and reported as a ``resync`` event with ``detail=[("stream_gap",
        reason)]``; nothing is bridged."""
        self._check_fed()
        self._router.report_gap(key, reason)

    def feed_flush(self) -> None:
        """Wake the workers for what :meth:`feed` queued (as the I/O thread does before it waits
        for input)."""
        self._check_fed()
        self._router.on_idle()

    def feed_error(self, text: str, exception: Optional[BaseException] = None) -> None:
        """The fed source failed (e.g. cannot be reached): an ``error`` event of kind
        ``"connection"``."""
        self._emitter.error("connection", text, exception=exception)

    def _check_fed(self) -> None:
        life = self._lifecycle
        if not life.started or life.connected_mode:
            raise DydxWsError("this client is not fed: start it with start(connect=False)")

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """True once connected; False on timeout, and at once when the client is stopped or
        gave up reconnecting (``state == "failed"``). Raises :class:`DydxWsError` if the
        client was never started (call ``start()`` or use ``with``)."""
        if not self._lifecycle.started:
            raise DydxWsError(NOT_STARTED)
        pool = self._connections
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._lifecycle.stopping or pool.gave_up() is not None):
            waiting = pool.first_unconnected()
            if waiting is None:
                return True
            remaining = _WAIT_SLICE if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            waiting.connection.connected.wait(min(remaining, _WAIT_SLICE))
        return pool.all_connected()

    @property
    def connected(self) -> bool:
        """Every connection of the pool is open."""
        return self._connections.all_connected()

    @property
    def state(self) -> str:
        """``"not started"``, ``"connecting"`` (also while reconnecting), ``"connected"``,
        ``"failed"`` (the reconnect policy gave up: every subscription failed with the cause;
        ``stop()`` it and make a new client) or ``"stopped"``."""
        if self._lifecycle.stopping:
            return "stopped"
        if not self._lifecycle.started:
            return "not started"
        if self._connections.gave_up() is not None:
            return "failed"
        return "connected" if self.connected else "connecting"

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every message queued so far (and every event) has been delivered to the
        callbacks; True if that happened within ``timeout``. For tests, replays and orderly
        shutdowns."""
        self._router.on_idle()
        keys = [t.key for t in self._registry.topics()] + [Emitter.KEY]
        done = []
        for key in keys:
            event = threading.Event()
            if self._dispatcher.call_soon(key, event.set):
                done.append(event)
        deadline = time.monotonic() + timeout
        return all(e.wait(max(0.0, deadline - time.monotonic())) for e in done)

    def stop(self, timeout: float = 5.0) -> bool:
        """Close the connection and join every thread within ``timeout`` seconds.

        Idempotent and safe from callbacks. Returns True if every thread has exited.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            first = not self._lifecycle.stopping
            self._lifecycle.stopping = True
            self._connections.stop_sending()
        if not first:
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
            return self._stopped.is_set() and not self._dispatcher.leaked_threads()
        if self._route_limiter is not None:
            self._route_limiter.close()  # a background request waiting for a slot gives up
        io_done = self._connections.stop(max(0.0, deadline - time.monotonic()))
        drift_done = True
        if self._drift is not None:
            if self._owns_rest and self.rest is not None:
                self.rest.close()  # cuts short a REST call or retry wait in progress
            drift_done = self._drift.stop(max(0.0, deadline - time.monotonic()))
        elif self._owns_rest and self.rest is not None:
            self.rest.close()
        sinks_done = stop_sinks(self._sinks, max(0.0, deadline - time.monotonic()))
        workers_done = self._dispatcher.stop(max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        forget(self)
        if not io_done:
            log.warning("the I/O thread did not exit within %.1f s", timeout)
        return io_done and drift_done and workers_done and sinks_done

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
    @overload
    def subscribe_trades(
        self,
        ticker: str,
        callback: Optional[Callable[[TradesMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
        backfill: bool = False,
    ) -> Subscription: ...

    @overload
    def subscribe_trades(
        self,
        ticker: Markets,
        callback: Optional[Callable[[TradesMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
        backfill: bool = False,
    ) -> SubscriptionGroup: ...

    def subscribe_trades(
        self,
        ticker: Union[str, Markets],
        callback: Optional[Callable[[TradesMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
        backfill: bool = False,
    ) -> Union[Subscription, SubscriptionGroup]:
        """Public trades of one market (``v4_trades``), or of several (a list of tickers, or
        ``ALL_MARKETS``: a :class:`SubscriptionGroup`).

        ``backfill=True``: after a gap (reconnect or resync) the trades the stream missed are
        delivered first, oldest first and deduplicated, as a message with ``backfilled=True``.
        """
        if not isinstance(ticker, str):
            return self._group(
                TRADES,
                ticker,
                lambda t: self.subscribe_trades(t, callback, batched=batched, backfill=backfill),
            )
        ticker = validate_ticker(ticker)
        params = {"ticker": ticker, "backfill": bool(backfill)}
        handle = self._subscribe(TRADES, _untyped(callback), batched, params)
        if backfill:
            with self._lock:
                self._state.add_backfill(handle.key, ticker, self._background_rest)
        return handle

    @overload
    def subscribe_orderbook(
        self,
        ticker: str,
        callback: Optional[Callable[[OrderbookMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription: ...

    @overload
    def subscribe_orderbook(
        self,
        ticker: Markets,
        callback: Optional[Callable[[OrderbookMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> SubscriptionGroup: ...

    def subscribe_orderbook(
        self,
        ticker: Union[str, Markets],
        callback: Optional[Callable[[OrderbookMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Union[Subscription, SubscriptionGroup]:
        """The order book of one market (or of several: a list of tickers, or ``ALL_MARKETS``,
        give a :class:`SubscriptionGroup`); ``message.book`` / ``order_book(ticker)`` is the
        local book after each frame."""
        if not isinstance(ticker, str):
            return self._group(
                ORDERBOOK, ticker, lambda t: self.subscribe_orderbook(t, callback, batched=batched)
            )
        ticker = validate_ticker(ticker)
        params = {"ticker": ticker}
        return self._subscribe(ORDERBOOK, _untyped(callback), batched, params)

    @overload
    def subscribe_candles(
        self,
        ticker: str,
        resolution: Any,
        callback: Optional[Callable[[CandlesMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription: ...

    @overload
    def subscribe_candles(
        self,
        ticker: Markets,
        resolution: Any,
        callback: Optional[Callable[[CandlesMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> SubscriptionGroup: ...

    def subscribe_candles(
        self,
        ticker: Union[str, Markets],
        resolution: Any,
        callback: Optional[Callable[[CandlesMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Union[Subscription, SubscriptionGroup]:
        """Candles of one market (or of several: a list, or ``ALL_MARKETS``, give a
        :class:`SubscriptionGroup`) and resolution (a :class:`CandleResolution` or
        ``"1MIN"``...)."""
        res = validate_resolution(resolution)
        if not isinstance(ticker, str):
            return self._group(
                CANDLES, ticker, lambda t: self.subscribe_candles(t, res, callback, batched=batched)
            )
        ticker = validate_ticker(ticker)
        params = {"ticker": ticker, "resolution": res}
        return self._subscribe(CANDLES, _untyped(callback), batched, params)

    def _group(
        self, name: str, tickers: Markets, subscribe: Callable[[str], Subscription]
    ) -> SubscriptionGroup:
        """A :class:`SubscriptionGroup` of ``subscribe(ticker)`` for a list or ALL_MARKETS."""
        emit = lambda event: self._emitter.emit("group", event)  # noqa: E731
        if isinstance(tickers, AllMarkets):
            follow = lambda on_markets: self.subscribe_markets(on_markets)  # noqa: E731
            return SubscriptionGroup(name, subscribe, emit, follow=follow)
        if isinstance(tickers, (bytes, bytearray)) or not isinstance(tickers, Iterable):
            raise ValueError(
                f"ticker must be a ticker such as 'BTC-USD', a list of tickers or ALL_MARKETS, "
                f"got {tickers!r}"
            )
        checked = list(dict.fromkeys(validate_ticker(t) for t in tickers))
        if not checked:
            raise ValueError("an empty list of tickers subscribes to nothing")
        return SubscriptionGroup(name, subscribe, emit, tickers=checked)

    def subscribe_markets(
        self,
        callback: Optional[Callable[[MarketsMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """Every perpetual market (snapshot, trading diffs, oracle prices): ``client.markets``."""
        return self._subscribe(MARKETS, _untyped(callback), batched, {})

    def subscribe_subaccount(
        self,
        address: str,
        subaccount_number: int = 0,
        callback: Optional[Callable[[SubaccountMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """One subaccount (orders, fills, positions, transfers): ``client.subaccount(a, n)``."""
        address = validate_address(address)
        number = validate_subaccount_number(subaccount_number, parent=False)
        params = {"address": address, "subaccount_number": number}
        return self._subscribe(SUBACCOUNTS, _untyped(callback), batched, params)

    def subscribe_parent_subaccount(
        self,
        address: str,
        parent_subaccount_number: int = 0,
        callback: Optional[Callable[[ParentSubaccountMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """A parent subaccount (< 128) and all its children (isolated positions)."""
        address = validate_address(address)
        number = validate_subaccount_number(parent_subaccount_number, parent=True)
        params = {"address": address, "subaccount_number": number}
        return self._subscribe(PARENT_SUBACCOUNTS, _untyped(callback), batched, params)

    def subscribe_block_height(
        self,
        callback: Optional[Callable[[BlockHeightMessage], Any]] = None,
        *,
        batched: Optional[bool] = None,
    ) -> Subscription:
        """Every new block's height and time."""
        return self._subscribe(BLOCK_HEIGHT, _untyped(callback), batched, {})

    def subscriptions(self) -> List[Subscription]:
        """Every live subscription handle."""
        return [h for t in self._registry.topics() for h in self._registry.handles(t.key)]

    def _subscribe(
        self,
        name: str,
        callback: Optional[Callback],
        batched: Optional[bool],
        params: Dict[str, Any],
    ) -> Subscription:
        """Subscribe to channel ``name`` with validated ``params`` (its wire id is built from
        them by the channel table)."""
        if callback is not None and not callable(callback):
            raise ValueError("callback must be callable")
        wire_id = channel(name).build_id(params)
        topic = Topic(name, wire_id, self._default_batched if batched is None else batched)
        with self._lock:
            if self._lifecycle.stopping:
                raise DydxWsError("this client was stopped; create a new one")
            pool = self._connections
            handle, is_new = self._registry.add(
                topic, callback, params, pool.end_topic, owner=lambda: pool.place(topic)
            )
            if is_new:
                self._state.create(topic)
                pool.members[handle._entry.owner].router.begin_topic(topic)
        return handle

    # -- local state ----------------------------------------------------------------------------
    def order_book(self, ticker: str) -> OrderBook:
        """The live local book of a subscribed market (``KeyError`` if not subscribed)."""
        book = self._state.books.get(ticker)
        if book is None:
            raise KeyError(f"no order book for {ticker!r}: call subscribe_orderbook({ticker!r})")
        return book

    @property
    def markets(self) -> Dict[str, Any]:
        """Ticker -> :class:`~dydx_ws.models.PerpetualMarket` (snapshot merged with updates)."""
        return self._state.markets.snapshot()

    @property
    def markets_state(self) -> MarketsState:
        return self._state.markets

    def subaccount(self, address: str, number: int = 0) -> SubaccountState:
        """The live view of a subscribed subaccount (``KeyError`` if not subscribed)."""
        state = self._state.accounts.get(_account_key(SUBACCOUNTS, address, number))
        if not isinstance(state, SubaccountState):
            raise KeyError(f"no subaccount {address}/{number}: call subscribe_subaccount first")
        return state

    def parent_subaccount(self, address: str, number: int = 0) -> ParentSubaccountState:
        """The live view of a subscribed parent subaccount and its children."""
        state = self._state.accounts.get(_account_key(PARENT_SUBACCOUNTS, address, number))
        if not isinstance(state, ParentSubaccountState):
            raise KeyError(f"no parent subaccount {address}/{number}: subscribe first")
        return state

    # -- stats ----------------------------------------------------------------------------------
    def stats(self) -> Dict[str, Any]:
        """Counters, queue depths, drops, reconnects, callback errors, lag and message ages."""
        now = time.time()
        io = self._connections.totals()
        subs = {}
        for topic in self._registry.topics():
            entry = self._registry.get(topic.key)
            if entry is None:
                continue
            last = entry.last_message_at
            subs[label(topic.key)] = {
                "state": entry.state.value,
                "messages": entry.messages,
                "age_seconds": None if last is None else max(0.0, now - last),
                "drops": io["drops_by_key"].get(topic.key, 0),
                "lag_seconds": self._state.lag.get(topic.key),
            }
        dispatch = self._dispatcher.stats()
        return {
            **self._engine.counts(),
            "connected": self.connected,
            "state": self.state,
            "last_connection_error": self._connections.last_connection_error(),
            "connection_id": self._router.connection_id,
            "connections": self._connections.stats(),
            "connections_opened": self._connections.opened,
            "connections_closed": self._connections.closed,
            "subscription_moves": self._connections.moves,
            "url": self.network.ws_url,
            "bytes": io["bytes"],
            "messages_per_channel": io["per_channel"],
            "queue_depth": dispatch["depth"],
            "queue_depths": [w["depth"] for w in dispatch["workers"]],
            "dispatcher": dispatch,
            "events_pending": self._emitter.pending,
            "events_dropped": self._emitter.dropped,
            "drift_checks": self._drift.checks if self._drift else 0,
            "drift_deferred": self._drift.deferred if self._drift else 0,
            "drift_last_deferred": self._drift.last_deferred if self._drift else None,
            "rest_limits": self._route_limiter.stats() if self._route_limiter else None,
            "cpu_affinity": self._affinity_stats(),
            "subscriptions": subs,
            "sinks": {sink.name: sink.stats() for sink in list(self._sinks)},
        }

    def _affinity_stats(self) -> Dict[str, Any]:
        if self._auto_affinity is not None:
            return self._auto_affinity.stats()
        if self._cpus is not None:
            return {"mode": "fixed", "cpus": sorted(self._cpus)}
        return {"mode": "off"}

    def __repr__(self) -> str:
        return (
            f"<DydxWebSocketClient {self.network.name} {self.state}, "
            f"{len(self._registry)} subscriptions>"
        )

    def _repr_html_(self) -> str:
        """A status card for notebooks (connection, subscriptions, counters)."""
        return status_html(self)

    def add_frame_tap(self, tap: Callable[[Any, float], None]) -> Callable[[], None]:
        """Call ``tap(raw_frame, received_at)`` on the I/O thread for every frame received,
        before it is decoded (e.g. :meth:`dydx_ws.replay.Recorder.write`). It must be quick and
        must not raise. Returns a function that removes it."""
        pool = self._connections
        with self._lock:
            pool.set_taps((*pool.frame_taps, tap), pool.decoded_taps)

        def remove() -> None:
            with self._lock:
                pool.set_taps(tuple(t for t in pool.frame_taps if t is not tap), pool.decoded_taps)

        return remove

    def add_sink(self, sink: Sink) -> Sink:
        """Send every frame received from now on to ``sink`` (e.g. :class:`~dydx_ws.sinks.
        RedisStreamSink`, :class:`~dydx_ws.sinks.ParquetSink`): the raw text, receive time,
        connection id, and the channel and id the I/O side decoded go through the sink's
        bounded queue to its own thread (:mod:`dydx_ws.sinks.base`), so a slow or dead sink
        never slows callbacks or the heartbeat. Its figures are in ``stats()["sinks"]``;
        ``stop()`` flushes and closes it; lost frames are reported as ``error`` events of kind
        ``"sink"``. Returns ``sink``."""
        with self._lock:
            if self._lifecycle.stopping:
                raise DydxWsError("this client was stopped; create a new one")
            names = {s.name for s in self._sinks}
            base, n = sink.name, 2
            while sink.name in names:
                sink.name, n = f"{base}-{n}", n + 1
            sink.attach(
                ClientContext(
                    uncross=self._uncross,
                    resync=self._connections.resubscribe,
                    report=lambda text: self._emitter.error("sink", text),
                )
            )
            self._sinks.append(sink)
            # After decoding: the sink gets the I/O side's message (channel, id, contents)
            # and parses nothing again.
            pool = self._connections
            pool.set_taps(pool.frame_taps, (*pool.decoded_taps, sink.offer))
        return sink


def _account_key(name: str, address: str, number: int) -> Tuple[str, Optional[str]]:
    """The subscription key of an account channel's view of ``address``/``number``."""
    return (name, channel(name).build_id({"address": address, "subaccount_number": number}))


def _untyped(callback: Optional[Callable[[Any], Any]]) -> Optional[Callback]:
    """A channel's typed callback as the registry stores it: the router only hands it messages
    of that channel, so its parameter type holds (the annotation is for the user's type checker)."""
    return callback
