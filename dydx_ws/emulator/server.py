"""``IndexerEmulator``: lifecycle (one named thread, one asyncio loop), faults, introspection.

The loop hosts the websocket server (socks), the HTTP server (comlink), the block producer and the
global batch flush.  Every public method is thread-safe: it runs its work inside the loop and
waits for the result.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import json
import logging
import threading
import time
import weakref
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from websockets.asyncio.server import Server, serve

from ..network import Network
from .config import CHANNELS, EmulatorConfig
from .httpd import HttpServer, RestRateLimiter
from .markets import is_ticker
from .rest import Comlink
from .sim_base import INACTIVE_STATUSES
from .simulator import MarketSimulator
from .tickers import resolve_markets
from .ws import Socks

log = logging.getLogger("dydx_ws.emulator.server")

T = TypeVar("T")
THREAD_NAME = "dydx-emulator"
EXIT_TIMEOUT = 3.0  # seconds for every emulator still running at interpreter exit, together
_running: weakref.WeakSet[IndexerEmulator] = weakref.WeakSet()


@atexit.register
def _stop_running_emulators() -> None:
    """The emulator's thread is a daemon (a script that never stops it still exits); stop the
    ones still running so their clients get a proper close, within ``EXIT_TIMEOUT``."""
    deadline = time.monotonic() + EXIT_TIMEOUT
    for emulator in list(_running):
        emulator.stop(timeout=max(0.1, deadline - time.monotonic()))


SHUTDOWN_REASON = '{"message":"Service restarting"}'
# Close codes a close frame may carry (RFC 6455 §7.4: 1005, 1006 and 1015 never go on the wire)
SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})
ABORT_CODE = 1006  # "closed without a close frame": the emulator aborts TCP


def _seconds(name: str, value: float) -> float:
    """A duration argument: a finite number >= 0, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _count(name: str, value: int, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _flag(name: str, value: bool) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _http_status(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError(f"status must be an HTTP error status (400-599), got {value!r}")
    return value


def _close_code(code: Optional[int], reason: str) -> None:
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
        raise ValueError("reason must be a str of at most 123 UTF-8 bytes")
    if code is None or code == ABORT_CODE:
        return
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError(f"code must be an int or None, got {code!r}")
    if code not in SENDABLE_CLOSE_CODES and not 3000 <= code <= 4999:
        raise ValueError(
            f"close code {code} cannot be sent in a close frame (use 1000-1003, 1007-1014 or "
            "3000-4999; 1006 or None aborts TCP without one)"
        )


class IndexerEmulator:
    """A local dYdX v4 Indexer (socks + comlink subset) with a seeded market simulator.

    ``markets`` is a sequence of tickers or a count: ``markets=300`` lists a mainnet-sized,
    deterministic set (BTC-USD, ETH-USD, SOL-USD, … first). With more than
    ``markets_per_block`` (32) markets the quiet ones take turns trading, so a block stays
    cheap and every market still trades every few blocks. :meth:`list_market` and
    :meth:`delist_market` change the listing while it runs.

    ``start()`` returns once both servers listen; ``stop()`` closes every client with 1012 and
    joins the thread.  Extra keyword options are :class:`EmulatorConfig` fields (e.g.
    ``batch_interval``, ``snapshot_delay``, ``crossed_levels``, ``rest_port``, ``start_time``,
    ``fetch_latency``, ``heartbeat_close_timeout``, ``route_rate_limits``).  Bad arguments to its
    methods raise ``ValueError`` before anything happens.  docs/protocol.md records where it
    follows the real server.
    """

    def __init__(
        self,
        markets: Union[int, Sequence[str]] = ("BTC-USD", "ETH-USD"),
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        block_time: float = 1.0,
        heartbeat_interval: float = 30.0,
        heartbeat_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        self.config = dataclasses.replace(
            EmulatorConfig(),
            markets=resolve_markets(markets),
            seed=seed,
            host=host,
            port=port,
            block_time=block_time,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            **options,
        )
        base = self.config.start_time if self.config.start_time is not None else time.time()
        self.sim = MarketSimulator(self.config, base)
        self.comlink = Comlink(self.sim, self.config)
        self._blocks_made = 0
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._startup_error: Optional[BaseException] = None
        self._socks: Optional[Socks] = None
        self._http: Optional[HttpServer] = None
        self._ws_server: Optional[Server] = None
        self._port = 0
        self._rest_port = 0
        self._running_blocks = threading.Event()
        self._running_blocks.set()
        self._resume: Optional[asyncio.Event] = None
        # set by stop(); read by _main under _lock, so a stop() that comes before the loop is up
        # (e.g. start() timing out) is not lost
        self._stop_requested = False

    # ----- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> IndexerEmulator:
        """Start serving; returns once the websocket and HTTP servers are listening."""
        with self._lock:
            if self._thread is not None:
                return self
            self._ready.clear()
            self._startup_error = None
            self._stop_requested = False
            thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread = thread
            thread.start()
            _running.add(self)
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("emulator did not start in time")
        if self._startup_error is not None:
            error = self._startup_error
            self.stop()
            raise RuntimeError(f"emulator failed to start: {error}") from error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close all clients with 1012 ``{"message":"Service restarting"}`` and join the thread.

        Idempotent; bounded by ``timeout`` seconds.
        """
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._stop_requested = True
            loop, event = self._loop, self._stop_event
            if loop is not None and event is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("emulator thread did not stop within %.1fs", timeout)
        with self._lock:
            if self._thread is thread and not thread.is_alive():
                self._thread = None
                _running.discard(self)

    def __enter__(self) -> IndexerEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start()
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                log.exception("emulator loop crashed")
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                self._loop = None
                loop.close()
                self._ready.set()

    async def _main(self) -> None:
        config = self.config
        stop_event = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop_event = stop_event
            if self._stop_requested:
                stop_event.set()
        self._resume = asyncio.Event()
        if self._running_blocks.is_set():
            self._resume.set()
        socks = self._socks = Socks(self.comlink, config)
        http = self._http = HttpServer(self.comlink.get)
        if config.rest_rate_limit is not None:
            http.limiter = RestRateLimiter(*config.rest_rate_limit)
        if config.candles_rate_limit is not None:
            http.candles_limiter = RestRateLimiter(*config.candles_rate_limit)
        http.route_limiters = {
            route: RestRateLimiter(points, seconds)
            for route, (points, seconds) in config.route_rate_limits.items()
        }
        await http.start(config.host, config.rest_port)
        try:
            self._ws_server = await serve(
                socks.handler,
                config.host,
                config.port,
                process_request=socks.process_request,
                compression=None,
                ping_interval=None,
                ping_timeout=None,
                close_timeout=config.close_timeout,
                max_size=100 * 2**20,
                max_queue=64,
            )
        except BaseException:
            await http.close()
            raise
        self._port = self._ws_server.sockets[0].getsockname()[1]
        self._rest_port = http.port
        blocks = asyncio.ensure_future(self._block_loop())
        batches = asyncio.ensure_future(self._batch_loop())
        self._ready.set()
        log.info("emulator listening: %s %s", self.ws_url, self.rest_url)
        try:
            await stop_event.wait()
        finally:
            blocks.cancel()
            batches.cancel()
            await asyncio.gather(blocks, batches, return_exceptions=True)
            socks.unstall()
            socks.reject_until = 0.0
            socks.abort_closing()
            self._ws_server.close(close_connections=True, code=1012, reason=SHUTDOWN_REASON)
            try:
                await asyncio.wait_for(self._ws_server.wait_closed(), config.close_timeout + 3)
            except asyncio.TimeoutError:
                log.warning("websocket server did not close in time")
            await http.close()

    async def _block_loop(self) -> None:
        assert self._resume is not None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.config.block_time
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = loop.time()
                await asyncio.sleep(0)
            if not self._resume.is_set():
                await self._resume.wait()
                next_at = loop.time()
            try:
                self._produce_block()
            except Exception:  # keep the emulator alive, but say so loudly
                log.exception("block production failed at height %d", self.sim.height)

    def _produce_block(self) -> None:
        assert self._socks is not None
        self._blocks_made += 1
        if self.config.start_time is not None:
            now = self.config.start_time + self._blocks_made * self.config.block_time
        else:
            now = time.time()
        publish = self._socks.publish
        for pub in self.sim.step(now):
            publish(pub)

    async def _batch_loop(self) -> None:
        assert self._socks is not None
        while True:
            await asyncio.sleep(self.config.batch_interval)
            try:
                self._socks.flush_batches()
            except Exception:
                log.exception("batch flush failed")

    # ----- cross-thread plumbing --------------------------------------------------------------

    def _call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        loop = self._loop
        if loop is None or self._socks is None:
            raise RuntimeError("the emulator is not running (call start())")
        if threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def _await(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        loop = self._loop
        if loop is None or self._socks is None:
            raise RuntimeError("the emulator is not running (call start())")

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    @property
    def socks(self) -> Socks:
        if self._socks is None:
            raise RuntimeError("the emulator is not running (call start())")
        return self._socks

    # ----- addresses --------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self._port}/v4/ws"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self._rest_port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_port(self) -> int:
        return self._rest_port

    @property
    def network(self) -> Network:
        return Network.custom(self.ws_url, self.rest_url, name="emulator")

    @property
    def demo_address(self) -> str:
        return self.sim.demo_address

    @property
    def markets(self) -> Tuple[str, ...]:
        """Every listed ticker in listing order, delisted ones included."""
        return self.sim.tickers

    @property
    def active_markets(self) -> Tuple[str, ...]:
        """The tickers that trade (status ACTIVE), in listing order."""
        return self.sim.active_tickers

    # ----- listing ----------------------------------------------------------------------------

    def list_market(self, ticker: str) -> None:
        """List a new ACTIVE market now: it shows in REST at once, ``v4_markets`` subscribers get
        its full trading object (as ender publishes on creation), and it then trades and has a
        book like the others. Subscribes to it are refused with ``Invalid subscription id for
        channel: (…)`` for ``listing_delay`` seconds (socks' market cache lags; up to 300 s on
        the real server). A bad ticker, or one already listed, raises ``ValueError``."""
        if not isinstance(ticker, str) or not is_ticker(ticker):
            raise ValueError(f"not a perpetual ticker: {ticker!r}; tickers look like BTC-USD")

        def do() -> None:
            known_at = time.monotonic() + self.config.listing_delay
            pub = self.sim.list_market(ticker, known_at)
            if self._socks is not None:
                self._socks.publish(pub)

        self._apply(do)

    def delist_market(self, ticker: str, status: str = "FINAL_SETTLEMENT") -> None:
        """Give a market a status other than ACTIVE (``FINAL_SETTLEMENT``, ``PAUSED``,
        ``CANCEL_ONLY``, ``POST_ONLY`` or ``INITIALIZING``): ``v4_markets`` subscribers get its
        trading object with that status, REST shows it, and the market stops trading (no more
        trades, book or candle updates; book and history stay readable). Subscriptions to it
        stay open and go quiet, and new subscribes still succeed, as on the real server (its
        market cache keeps such markets). An unknown ticker, a bad status or the status the
        market already has raises ``ValueError``."""
        if not isinstance(ticker, str):
            raise ValueError(f"ticker must be a str, got {ticker!r}")
        if status not in INACTIVE_STATUSES:
            raise ValueError(
                f"status must be one of {', '.join(INACTIVE_STATUSES)}, got {status!r}"
            )

        def do() -> None:
            pub = self.sim.delist_market(ticker, status)
            if self._socks is not None:
                self._socks.publish(pub)

        self._apply(do)

    def _apply(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the loop, or right here (under the lock) if the emulator is not
        running; its ``ValueError`` reaches the caller either way."""
        with self._lock:
            if self._thread is None:
                return fn()
        return self._call(fn)

    # ----- market simulation control ----------------------------------------------------------

    def pause(self) -> int:
        """Stop producing blocks (returns the current height); in-flight messages still go out."""
        self._running_blocks.clear()

        def do() -> int:
            assert self._resume is not None
            self._resume.clear()
            return self.sim.height

        return self._call(do)

    def resume(self) -> None:
        """Produce blocks again after :meth:`pause`."""
        self._running_blocks.set()

        def do() -> None:
            assert self._resume is not None
            self._resume.set()

        self._call(do)

    def advance(self, blocks: int = 1) -> int:
        """Produce ``blocks`` blocks right now (typically while paused); returns the new height."""
        _count("blocks", blocks)

        def do() -> int:
            for _ in range(blocks):
                self._produce_block()
            return self.sim.height

        return self._call(do)

    @property
    def height(self) -> int:
        return self._call(lambda: self.sim.height)

    def flush(self, timeout: float = 10.0) -> None:
        """Flush batched data now and wait until every connection's outgoing queue is empty."""
        _seconds("timeout", timeout)
        self._call(self.socks.flush_batches)

        async def drained() -> None:
            deadline = time.monotonic() + timeout
            while self.socks.queued() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)

        self._await(drained, timeout + 1)

    # ----- faults -----------------------------------------------------------------------------

    def drop_connections(
        self, code: Optional[int] = 1011, reason: str = "", connection_id: Optional[str] = None
    ) -> int:
        """Close every client socket (or only the one of ``connection_id``, as its
        ``connected`` frame named it) now with a close frame of ``code``; ``None`` or 1006
        ("closed without a close frame") aborts TCP. A code no close frame may carry (1005,
        1015, 1004, out of range) or a reason over 123 bytes raises ``ValueError``; returns
        how many were closed."""
        _close_code(code, reason)
        if connection_id is not None and not isinstance(connection_id, str):
            raise ValueError(f"connection_id must be a string, got {connection_id!r}")
        return self._await(lambda: self.socks.drop(code, reason, connection_id))

    def stop_publishing(self, channel: str, id: Optional[str] = None) -> int:
        """The server's silent stop: the current subscriptions of ``channel`` (``id``: only that
        one, e.g. ``"BTC-USD"``; None: all of the channel) stay registered and the connections
        stay open, but nothing more is sent for them, as the real server does after a send
        error on its side. A fresh subscribe streams again. Returns how many were stopped."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
        if id is not None and not isinstance(id, str):
            raise ValueError(f"id must be a str or None, got {id!r}")
        sub_id = "v4_markets" if channel == "v4_markets" else id
        return self._call(lambda: self.socks.stop_publishing(channel, sub_id))

    def stall(self, seconds: float) -> None:
        """Stop sending and stop reading (so client pings go unanswered) for ``seconds``."""
        _seconds("seconds", seconds)
        self._call(lambda: self.socks.stall(seconds))

    def unstall(self) -> None:
        """End a :meth:`stall` early."""
        self._call(self.socks.unstall)

    def reject_handshakes(self, seconds: float, status: int = 429) -> None:
        """Answer websocket upgrades with HTTP ``status`` for ``seconds``."""
        _seconds("seconds", seconds)
        _http_status(status)

        def do() -> None:
            self.socks.reject_until = time.monotonic() + seconds
            self.socks.reject_status = status

        self._call(do)

    def reject_rest(self, seconds: float, status: int = 429) -> None:
        """Answer every REST request with ``status`` and ``Too many requests`` for ``seconds``."""
        _seconds("seconds", seconds)
        _http_status(status)

        def do() -> None:
            assert self._http is not None
            self._http.reject_until = time.time() + seconds
            self._http.reject_status = status

        self._call(do)

    def set_rest_rate_limit(self, points: Optional[int], seconds: float = 10.0) -> None:
        """Enable comlink's per-IP limit (``points`` per ``seconds``), or disable with None."""
        if points is not None:
            _count("points", points, 1)
        if _seconds("seconds", seconds) <= 0:
            raise ValueError("seconds must be > 0")

        def do() -> None:
            assert self._http is not None
            self._http.limiter = None if points is None else RestRateLimiter(points, seconds)

        self._call(do)

    def set_route_rate_limit(
        self, route: str, points: Optional[int], seconds: float = 10.0
    ) -> None:
        """Set comlink's per-IP limit of one route (path prefix, e.g. ``"/v4/orders"``: 100 per
        10 s by default), or remove it with None."""
        if not isinstance(route, str) or not route.startswith("/v4/"):
            raise ValueError(f"route must be a path starting with /v4/, got {route!r}")
        if points is not None:
            _count("points", points, 1)
        if _seconds("seconds", seconds) <= 0:
            raise ValueError("seconds must be > 0")

        def do() -> None:
            assert self._http is not None
            if points is None:
                self._http.route_limiters.pop(route, None)
            else:
                self._http.route_limiters[route] = RestRateLimiter(points, seconds)

        self._call(do)

    def send_raw(self, text: str) -> int:
        """Send a raw text frame to every client; returns the number of clients."""
        if not isinstance(text, str):
            raise ValueError("text must be a str (a text frame)")
        return self._call(lambda: self.socks.send_raw(text))

    def set_snapshot_delay(self, seconds: float) -> None:
        """Hold each subscription's registration for ``seconds`` after its snapshot is read."""
        _seconds("seconds", seconds)

        def do() -> None:
            self.socks.snapshot_delay = seconds

        self._call(do)

    def fail_subscriptions(self, count: int = 1, status: int = 500) -> None:
        """Make the next ``count`` initial fetches fail (403 gives the "blocked" text)."""
        _count("count", count)
        _http_status(status)
        self._call(lambda: self.socks.fail_subscribes.extend([status] * count))

    def inject_crossed_level(
        self, ticker: Optional[str] = None, side: Optional[str] = None
    ) -> Dict[str, Any]:
        """Stream a stale level on the wrong side of ``ticker``'s book (REST never shows it)."""

        ticker = self._market_side(ticker, side)

        def do() -> Dict[str, Any]:
            pub, info = self.sim.inject_crossed_level(ticker, side)
            self.socks.publish(pub)
            return info

        return self._call(do)

    def silent_delete_level(
        self, ticker: Optional[str] = None, side: Optional[str] = None
    ) -> Optional[Dict[str, Any]]:
        """Remove a level without any websocket message (visible only via REST)."""
        market = self._market_side(ticker, side)
        return self._call(lambda: self.sim.silent_delete_level(market, side))

    def _market_side(self, ticker: Optional[str], side: Optional[str]) -> str:
        """A fault's market (default: the first) and side, checked: ValueError if unknown."""
        tickers = self.sim.tickers
        market = ticker or tickers[0]
        if market not in self.sim.markets:
            listed = ", ".join(tickers[:10]) + (", …" if len(tickers) > 10 else "")
            raise ValueError(f"unknown market {market!r}; one of {listed}")
        if side not in (None, "bids", "asks"):
            raise ValueError(f"side must be 'bids', 'asks' or None, got {side!r}")
        return market

    def set_crossed_levels(self, enabled: bool) -> None:
        """Inject crossed levels continuously (probability ``fault_probability`` per block)."""
        _flag("enabled", enabled)

        def do() -> None:
            self.sim.crossed_levels = enabled

        self._call(do)

    def set_silent_deletions(self, enabled: bool) -> None:
        """Silently delete levels continuously (probability ``fault_probability`` per block)."""
        _flag("enabled", enabled)

        def do() -> None:
            self.sim.silent_deletions = enabled

        self._call(do)

    # ----- introspection ----------------------------------------------------------------------

    def subscriptions(self) -> List[Tuple[str, str, str]]:
        """``(connection_id, channel, normalised id)`` for every registered subscription."""
        return self._call(self.socks.subscriptions)

    def connection_count(self) -> int:
        return self._call(lambda: len(self.socks.conns))

    def connection_ids(self) -> List[str]:
        return self._call(lambda: list(self.socks.conns))

    @property
    def connections_accepted(self) -> int:
        return self.socks.connections_accepted

    @property
    def handshakes_rejected(self) -> int:
        return self.socks.handshakes_rejected

    def stats(self) -> Dict[str, int]:
        def do() -> Dict[str, int]:
            socks = self.socks
            assert self._http is not None
            return {
                "connections": len(socks.conns),
                "connections_accepted": socks.connections_accepted,
                "handshakes_rejected": socks.handshakes_rejected,
                "subscriptions": sum(len(c.subs) for c in socks.conns.values()),
                "messages_published": socks.messages_published,
                "publishing_stopped": socks.muted,
                "rest_requests": self._http.requests_served,
                "rest_connections": self._http.connections_accepted,
                "height": self.sim.height,
            }

        return self._call(do)

    def rest_get(self, target: str) -> Tuple[int, Any]:
        """What ``GET target`` returns (status, parsed JSON or text), computed in the loop."""
        if not isinstance(target, str) or not target.startswith("/"):
            raise ValueError(f"target must be a path such as '/v4/height', got {target!r}")

        def do() -> Tuple[int, Any]:
            response = self.comlink.get(target)
            try:
                return response.status, json.loads(response.body)
            except ValueError:
                return response.status, response.body

        return self._call(do)

    def _rest_body(self, target: str) -> Any:
        status, body = self.rest_get(target)
        if status != 200:
            raise KeyError(f"GET {target} -> {status} {body}")
        return body

    def rest_orderbook(self, ticker: str) -> Dict[str, Any]:
        """The REST book ``{"bids":[{"price","size"}…],"asks":[…]}`` (sorted, uncrossed)."""
        body: Dict[str, Any] = self._rest_body(f"/v4/orderbooks/perpetualMarket/{ticker}")
        return body

    def rest_markets(self) -> Dict[str, Any]:
        body: Dict[str, Any] = self._rest_body("/v4/perpetualMarkets")["markets"]
        return body

    def rest_trades(self, ticker: str, limit: int = 100) -> List[Dict[str, Any]]:
        body: List[Dict[str, Any]] = self._rest_body(
            f"/v4/trades/perpetualMarket/{ticker}?limit={limit}"
        )["trades"]
        return body

    def rest_candles(
        self, ticker: str, resolution: str = "1MIN", limit: int = 100
    ) -> List[Dict[str, Any]]:
        body: List[Dict[str, Any]] = self._rest_body(
            f"/v4/candles/perpetualMarkets/{ticker}?resolution={resolution}&limit={limit}"
        )["candles"]
        return body

    def rest_subaccount(self, number: int = 0, address: Optional[str] = None) -> Dict[str, Any]:
        body: Dict[str, Any] = self._rest_body(
            f"/v4/addresses/{address or self.demo_address}/subaccountNumber/{number}"
        )["subaccount"]
        return body

    def rest_height(self) -> Dict[str, Any]:
        body: Dict[str, Any] = self._rest_body("/v4/height")
        return body
