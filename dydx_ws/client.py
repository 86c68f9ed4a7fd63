"""``DydxWebSocketClient``: the public, synchronous face of the SDK.

Architecture (README "Threading model")::

    user threads --subscribe_*/unsubscribe/stop--> DydxWebSocketClient (registry, lifecycle)
                                                      | text frames, paced
                                                      v
    I/O thread "dydx-ws-io" (connection.py) --frames--> Router (router.py): decode, acks and
                                                      | server errors, reconnect bookkeeping
                                      Dispatcher.submit((channel, id), message)  (dispatch.py)
                                                      v
    workers "dydx-ws-worker-N" --> Delivery (delivery.py): LocalState (local_state.py), callbacks
    thread "dydx-ws-resync" --> DriftRepair (resync.py): compares local state with REST

This module wires those parts together and holds the user-facing API: subscribe_*, local state
accessors, events, stats and the lifecycle. It never runs user code on the I/O thread.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Type, Union

from .affinity import AutoAffinity, CpuSpec, parse_cpus, pin_threads
from .connection import Connection, ConnectionOptions, proxy_options
from .delivery import Delivery, label
from .dispatch import Dispatcher, OverflowPolicy
from .errors import DydxWsError
from .events import Counters, Emitter, EventHub
from .local_state import LocalState
from .network import Network
from .notebook import status_html, track
from .orderbook import OrderBook
from .reconnect import ReconnectPolicy
from .rest import IndexerRestClient
from .resync import DriftRepair
from .router import Router
from .sinks.base import ClientContext, Sink, stop_sinks
from .state import MarketsState, ParentSubaccountState, SubaccountState
from .subscriptions import Callback, Subscription, SubscriptionRegistry, Topic
from .validation import (
    validate_address,
    validate_resolution,
    validate_subaccount_number,
    validate_ticker,
)

__all__ = ["DydxWebSocketClient"]

log = logging.getLogger("dydx_ws.client")

# An idle worker is woken once this many messages wait for it, or when the I/O thread runs out
# of buffered input (Connection calls on_idle before blocking): one wake-up per burst, not per
# frame (a wake-up per frame costs a thread switch and halved throughput in measurements).
_WAKE_BATCH = 32


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
    - ``cpu_affinity``: where the SDK's own threads run (Linux). They share the GIL anyway, and
      one core spares the cache traffic of handing every message to another core (~28% less
      time per 1.6 KB message). ``"auto"`` (default): on the I/O thread's CPU once connected,
      released while that CPU is busy with other work; a CPU number or numbers: pinned there;
      ``None``: left to the operating system (:mod:`dydx_ws.affinity`).
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
        cpu_affinity: Union[str, CpuSpec, None] = "auto",
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
        self._auto_affinity: Optional[AutoAffinity] = None
        if isinstance(cpu_affinity, str) and cpu_affinity == "auto":
            self._cpus = None
            self._auto_affinity = AutoAffinity.create(self._sdk_threads)
        else:
            self._cpus = parse_cpus(cpu_affinity)  # type: ignore[arg-type]
        self._default_batched = bool(batched)
        self._lock = threading.RLock()
        self._started = False
        self._stopping = False
        self._stopped = threading.Event()
        self._counters = Counters(
            (
                "frames",
                "decode_errors",
                "server_errors",
                "unrouted",
                "dropped",
                "resyncs",
                "callback_errors",
                "reconnects",
                "connect_failures",
            )
        )
        self._state = LocalState(uncross)
        self._uncross = uncross
        self._sinks: List[Sink] = []
        self._registry = SubscriptionRegistry(self._on_last_release, self._lock)
        self._events = EventHub()
        # Events run on a worker; the emitter reaches the dispatcher once it exists.
        self._emitter = Emitter(self._events, lambda key, fn: self._dispatcher.call_soon(key, fn))
        self._dispatcher = Dispatcher(
            Delivery(self._registry, self._state, self._emitter, self._counters),
            workers=workers,
            queue_size=queue_size,
            overflow=OverflowPolicy(overflow),
            block_timeout=block_timeout,
            on_drop=lambda key, n: self._router.on_drop(key, n),
            on_handler_error=_log_worker_error,
            wake_batch=_WAKE_BATCH,
        )
        self._router = Router(
            url=self.network.ws_url,
            registry=self._registry,
            dispatcher=self._dispatcher,
            state=self._state,
            emitter=self._emitter,
            counters=self._counters,
            lock=self._lock,
            is_stopping=lambda: self._stopping,
            tick=self._auto_affinity.tick if self._auto_affinity is not None else None,
        )
        self._connection = Connection(self._options, self._router)
        self._router.connection = self._connection
        # Entry points of the I/O side, also driven by a replay (dydx_ws.replay) instead of a
        # socket: on_open() as if connected, on_frame(raw, received_at=None) per frame (decode,
        # match, dispatch), on_idle() to wake the workers.
        self.on_open = self._router.on_open
        self.on_frame = self._router.on_frame
        self.on_idle = self._router.on_idle
        self.on_close = self._router.on_close  # a feed other than the socket ended (CloseInfo)
        # Views used by DriftRepair (resync.py) and tests.
        self._books = self._state.books
        self._markets = self._state.markets
        self._accounts = self._state.accounts
        self._emit = self._emitter.emit
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
        if self._cpus is not None:
            pin_threads(self._cpus, self._sdk_threads())
        return self

    def _sdk_threads(self) -> List[Optional[threading.Thread]]:
        drift = self._drift.thread if self._drift is not None else None
        return [*self._dispatcher.threads(), self._connection.thread, drift]

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """True once connected (False on timeout)."""
        return self._connection.connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connection.connected.is_set()

    @property
    def state(self) -> str:
        """``"not started"``, ``"connecting"`` (also while reconnecting), ``"connected"`` or
        ``"stopped"``."""
        if self._stopping:
            return "stopped"
        if not self._started:
            return "not started"
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
            first = not self._stopping
            self._stopping = True
            self._router.ready = False
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
        sinks_done = stop_sinks(self._sinks, max(0.0, deadline - time.monotonic()))
        workers_done = self._dispatcher.stop(max(0.0, deadline - time.monotonic()))
        self._stopped.set()
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
                self._state.add_backfill(handle.key, ticker, self.rest)
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
                self._state.create(topic)
                if self._router.ready:
                    self._router.send_subscribe(topic)
        return handle

    def _on_last_release(self, topic: Topic) -> None:
        with self._lock:
            if self._router.ready:
                self._router.send_unsubscribe(topic)
            self._state.drop(topic.key)
            self._router.forget(topic.key)
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
            subs[label(topic.key)] = {
                "state": entry.state.value,
                "messages": entry.messages,
                "age_seconds": None if last is None else max(0.0, now - last),
                "drops": self._router.drops_by_key.get(topic.key, 0),
                "lag_seconds": self._state.lag.get(topic.key),
            }
        dispatch = self._dispatcher.stats()
        return {
            **self._counters,
            "connected": self.connected,
            "connection_id": self._router.connection_id,
            "url": self.network.ws_url,
            "bytes": self._connection.bytes_received,
            "messages_per_channel": dict(self._router.per_channel),
            "queue_depth": dispatch["depth"],
            "queue_depths": [w["depth"] for w in dispatch["workers"]],
            "dispatcher": dispatch,
            "drift_checks": self._drift.checks if self._drift else 0,
            "cpu_affinity": self._affinity_stats(),
            "subscriptions": subs,
            "sinks": {sink.name: sink.stats() for sink in self._sinks},
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
        with self._lock:
            self._router.frame_taps = (*self._router.frame_taps, tap)

        def remove() -> None:
            with self._lock:
                self._router.frame_taps = tuple(t for t in self._router.frame_taps if t is not tap)

        return remove

    def add_sink(self, sink: Sink) -> Sink:
        """Send every frame received from now on to ``sink`` (e.g. :class:`~dydx_ws.sinks.
        RedisStreamSink`, :class:`~dydx_ws.sinks.ParquetSink`): raw text, receive time and
        connection id go through the sink's bounded queue to its own thread
        (:mod:`dydx_ws.sinks.base`), so a slow or dead sink never slows callbacks or the
        heartbeat. Its figures are in ``stats()["sinks"]``; ``stop()`` flushes and closes it;
        lost frames are reported as ``error`` events of kind ``"sink"``. Returns ``sink``."""
        with self._lock:
            if self._stopping:
                raise DydxWsError("this client was stopped; create a new one")
            names = {s.name for s in self._sinks}
            base, n = sink.name, 2
            while sink.name in names:
                sink.name, n = f"{base}-{n}", n + 1
            sink.attach(
                ClientContext(
                    uncross=self._uncross,
                    resync=self._router.resync,
                    report=lambda text: self._emitter.error("sink", text),
                )
            )
            self._sinks.append(sink)
        router = self._router
        self.add_frame_tap(lambda raw, at: sink.offer(raw, at, router.connection_id))
        return sink


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


def _log_worker_error(key: Any, item: object, exc: BaseException) -> None:
    log.error("internal error while delivering %s", key, exc_info=exc)
