"""Synchronous client of the Indexer's REST API (comlink, ``/v4/...``), returning typed models.

:class:`IndexerRestClient` wraps one :class:`requests.Session` (connection keep-alive, TLS
verification on by default) and turns every endpoint of docs/protocol.md §5 into a method
returning the same dataclasses the WebSocket client produces, decoded with the generated fast
decoders of :mod:`dydx_ws.protocol._decoders` (never ``from_dict``).

Behaviour:

- Input is validated on the caller's thread before anything is sent (tickers, resolutions,
  addresses, subaccount numbers, limits, heights, timestamps): bad input raises ``ValueError``.
- A non-2xx answer raises :class:`~dydx_ws.errors.RestError` carrying the HTTP status and the
  server's own text (``errors[0].msg``, or the body text when it is not the JSON error shape).
- A 2xx answer that is not JSON or does not fit the model raises
  :class:`~dydx_ws.errors.DecodeError` naming the offending field.
- Connection errors, timeouts, 5xx and 429 are retried ``retries`` times with capped exponential
  backoff (equal jitter); a 429 waits for its ``Retry-After`` header (milliseconds on dYdX,
  docs/protocol.md §5.0), capped by ``max_retry_wait``. Other 4xx are never retried. When the
  budget is spent, the last HTTP error is raised as ``RestError``; a transport failure as
  :class:`RestConnectionError` (:class:`RestTimeoutError` for timeouts). Retries are logged at
  INFO on the ``dydx_ws.rest`` logger.
- :meth:`IndexerRestClient.iter_trades` and :meth:`IndexerRestClient.iter_candles` page backwards
  through history (newest first) with the cursors of docs/protocol.md §5.3/§5.4.

:meth:`IndexerRestClient.with_limiter` gives a view whose requests go through a per-route budget
(:mod:`dydx_ws._route_limits`); the WebSocket client uses one for its own background requests.

All methods are blocking; the client may be shared by threads (``requests.Session`` is used for
plain GETs only). ``close()`` also interrupts a pending retry wait.
"""

from __future__ import annotations

import copy
import email.utils
import json
import logging
import random
import re
import threading
from datetime import datetime, timezone
from types import TracebackType
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Set,
    Type,
    TypeVar,
    Union,
)
from urllib.parse import quote, urlsplit

import requests

from ._route_limits import RouteLimiter
from .errors import DecodeError, DydxConnectionError, DydxWsError, RestError
from .models import (
    AddressResponse,
    AssetPosition,
    AssetPositionsResponse,
    BlockHeight,
    Candle,
    CandleResolution,
    CandlesResponse,
    Fill,
    FillsResponse,
    Order,
    OrderbookResponse,
    ParentSubaccount,
    ParentSubaccountResponse,
    PerpetualMarket,
    PerpetualMarketsResponse,
    PerpetualPosition,
    PerpetualPositionsResponse,
    ServerTime,
    Subaccount,
    SubaccountResponse,
    Trade,
    TradesResponse,
    format_timestamp,
    parse_timestamp,
)
from .network import Network
from .protocol._decoders import decoder_for, locate_error
from .protocol._validation import (
    validate_address,
    validate_resolution,
    validate_subaccount_number,
    validate_ticker,
)

__all__ = [
    "API_LIMIT",
    "ORDER_STATUSES",
    "IndexerRestClient",
    "RestConnectionError",
    "RestTimeoutError",
]

logger = logging.getLogger("dydx_ws.rest")

T = TypeVar("T")
TimeLike = Union[datetime, str]
StatusArg = Union[str, Iterable[str], None]

API_LIMIT = 1000
"""The server's maximum ``limit`` (``API_LIMIT_V4``, docs/protocol.md §5.0)."""

ORDER_STATUSES = (
    "OPEN",
    "FILLED",
    "CANCELED",
    "BEST_EFFORT_CANCELED",
    "UNTRIGGERED",
    "BEST_EFFORT_OPENED",
)
"""The ``status`` values ``GET /v4/orders`` accepts (comlink's APIOrderStatus)."""

POSITION_STATUSES = ("OPEN", "CLOSED", "LIQUIDATED")

_USER_AGENT = "dydx_ws/0.1.0 (+requests)"
_BODY_SNIPPET = 500
_HTML_PRE = re.compile(r"<pre>(.*?)</pre>", re.DOTALL | re.IGNORECASE)


class RestConnectionError(DydxConnectionError, RestError):
    """A REST request failed at the transport level (connection refused or reset, TLS, timeout)
    after every allowed attempt. ``url`` and ``attempts`` say which request and how often. It is
    a :class:`RestError` too (``except RestError`` catches every failed request), with
    ``status`` 0: no HTTP response came."""

    def __init__(self, message: str, *, url: str = "", attempts: int = 1) -> None:
        DydxWsError.__init__(self, message)
        self.status = 0
        self.msg = message
        self.url = url
        self.attempts = attempts


class RestTimeoutError(RestConnectionError, TimeoutError):
    """Every attempt of a REST request timed out (connect or read ``timeout``)."""


# -- input checks (each returns the wire value) --------------------------------------------------
def _check_int(name: str, value: object, lo: int, hi: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_limit(limit: object, name: str = "limit") -> int:
    return _check_int(name, limit, 1, API_LIMIT)


def _check_time(name: str, value: object) -> str:
    """A datetime (naive = UTC) or an ISO-8601 string -> the wire's ``...Z`` form."""
    if isinstance(value, datetime):
        return format_timestamp(parse_timestamp(value))
    if isinstance(value, str):
        try:
            return format_timestamp(parse_timestamp(value.strip()))
        except ValueError:
            raise ValueError(f"{name} must be an ISO-8601 timestamp, got {value!r}") from None
    raise ValueError(f"{name} must be a datetime or ISO-8601 str, got {type(value).__name__}")


def _to_datetime(name: str, value: object) -> datetime:
    return parse_timestamp(_check_time(name, value))


def _check_statuses(status: StatusArg, allowed: Sequence[str], name: str = "status") -> str:
    """One status or several (a list, or a comma-separated str) -> ``"OPEN,UNTRIGGERED"``."""
    if status is None:
        return ""
    raw: List[object] = []
    if isinstance(status, str):
        raw.extend(status.split(","))
    elif isinstance(status, Iterable):
        for item in status:
            raw.extend(item.split(",") if isinstance(item, str) else [item])
    else:
        raise ValueError(f"{name} must be a str or a list of str, got {type(status).__name__}")
    values: List[str] = []
    for entry in raw:
        value = getattr(entry, "value", entry)
        if not isinstance(value, str):
            raise ValueError(f"{name} values must be str, got {type(entry).__name__} {entry!r}")
        text = value.strip().upper()
        if text not in allowed:
            raise ValueError(f"invalid {name} {entry!r}; expected one of {', '.join(allowed)}")
        if text not in values:
            values.append(text)
    if not values:
        raise ValueError(f"{name} must name at least one of {', '.join(allowed)}")
    return ",".join(values)


def _base_url(target: Union[Network, str]) -> str:
    if isinstance(target, Network):
        url = target.rest_url
    elif isinstance(target, str) and "://" not in target:
        url = Network.from_name(target).rest_url  # "mainnet", "testnet", "local"
    elif isinstance(target, str):
        url = target.strip()
    else:
        raise ValueError(f"expected a Network or a base URL str, got {type(target).__name__}")
    url = url.rstrip("/")
    if url.endswith("/v4"):
        url = url[: -len("/v4")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"REST base URL must be http(s)://host[:port], got {url!r}")
    return url


def _check_number(name: str, value: object, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


def _path_segment(value: str) -> str:
    return quote(value, safe="")


class IndexerRestClient:
    """Blocking, typed client of the Indexer REST API (``{base}/v4/...``).

    Args:
        network_or_base_url: a :class:`Network` (its ``rest_url``) or a base URL such as
            ``"https://indexer.dydx.trade"`` (a trailing ``/v4`` is tolerated).
        timeout: connect and read timeout of each attempt, in seconds.
        retries: extra attempts after a connection error, timeout, 5xx or 429 (0: none).
        backoff: first retry delay in seconds; it doubles per retry (with jitter), capped at
            ``max_retry_wait``. A 429 waits ``Retry-After`` instead, also capped.
        max_retry_wait: longest single wait between attempts, in seconds.
        session: a ``requests.Session`` to use (not closed by :meth:`close`); default: own one.
        verify: TLS verification (``True``, ``False`` or a CA bundle path).
        proxies: ``requests`` proxies mapping.
        headers: extra headers sent with every request.
    """

    def __init__(
        self,
        network_or_base_url: Union[Network, str] = Network.MAINNET,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        session: Optional[requests.Session] = None,
        verify: Union[bool, str] = True,
        proxies: Optional[MutableMapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._base = _base_url(network_or_base_url)
        self._timeout = _check_number("timeout", timeout, 0.0, strict=True)
        self._retries = _check_int("retries", retries, 0)
        self._backoff = _check_number("backoff", backoff, 0.0, strict=False)
        self._max_retry_wait = _check_number("max_retry_wait", max_retry_wait, 0.0, strict=False)
        if not isinstance(verify, (bool, str)):
            raise ValueError(f"verify must be a bool or a CA bundle path, got {verify!r}")
        self._verify: Union[bool, str] = verify
        self._proxies: Optional[MutableMapping[str, str]] = (
            dict(proxies) if proxies is not None else None
        )
        self._headers: Dict[str, str] = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if headers:
            self._headers.update(headers)
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._closed = threading.Event()
        self._rng = random.Random()
        self._limiter: Optional[RouteLimiter] = None

    def with_limiter(self, limiter: RouteLimiter) -> IndexerRestClient:
        """A view of this client (same session, closed with it) whose requests go through
        ``limiter``'s per-route budget: it waits for a slot or raises
        :class:`~dydx_ws._route_limits.RequestDeferred`, and a 429 blocks the route for its
        ``Retry-After``. Used for the SDK's own background requests."""
        view = copy.copy(self)
        view._owns_session = False
        view._limiter = limiter
        return view

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The host base URL (without ``/v4``)."""
        return self._base

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Close the session (if this client created it) and wake any retry wait. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> IndexerRestClient:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"IndexerRestClient({self._base!r}, {state})"

    # -- markets -----------------------------------------------------------------------------------
    def get_perpetual_markets(self, ticker: Optional[str] = None) -> Dict[str, PerpetualMarket]:
        """``GET /v4/perpetualMarkets[?ticker=]``: every market (or one) keyed by ticker."""
        params: Dict[str, Any] = {}
        if ticker is not None:
            params["ticker"] = validate_ticker(ticker)
        body = self._get("/v4/perpetualMarkets", params)
        return self._decode(PerpetualMarketsResponse, body).markets

    def get_orderbook(self, ticker: str) -> OrderbookResponse:
        """``GET /v4/orderbooks/perpetualMarket/{ticker}``: sorted, uncrossed, <= 100 levels."""
        ticker = validate_ticker(ticker)
        body = self._get(f"/v4/orderbooks/perpetualMarket/{_path_segment(ticker)}")
        return self._decode(OrderbookResponse, body)

    def get_trades(
        self,
        ticker: str,
        *,
        limit: Optional[int] = None,
        created_before_or_at_height: Optional[int] = None,
        created_before_or_at: Optional[TimeLike] = None,
    ) -> List[Trade]:
        """``GET /v4/trades/perpetualMarket/{ticker}``: taker trades, newest first."""
        ticker = validate_ticker(ticker)
        params = self._trade_params(limit, created_before_or_at_height, created_before_or_at)
        body = self._get(f"/v4/trades/perpetualMarket/{_path_segment(ticker)}", params)
        return self._decode(TradesResponse, body).trades

    def get_candles(
        self,
        ticker: str,
        resolution: Union[CandleResolution, str],
        *,
        limit: Optional[int] = None,
        from_iso: Optional[TimeLike] = None,
        to_iso: Optional[TimeLike] = None,
    ) -> List[Candle]:
        """``GET /v4/candles/perpetualMarkets/{ticker}``: newest first; ``from_iso`` inclusive,
        ``to_iso`` exclusive on ``started_at`` (a datetime or an ISO string)."""
        ticker = validate_ticker(ticker)
        params: Dict[str, Any] = {"resolution": validate_resolution(resolution)}
        if limit is not None:
            params["limit"] = _check_limit(limit)
        if from_iso is not None:
            params["fromISO"] = _check_time("from_iso", from_iso)
        if to_iso is not None:
            params["toISO"] = _check_time("to_iso", to_iso)
        body = self._get(f"/v4/candles/perpetualMarkets/{_path_segment(ticker)}", params)
        return self._decode(CandlesResponse, body).candles

    def get_height(self) -> BlockHeight:
        """``GET /v4/height``: the latest indexed block."""
        return self._decode(BlockHeight, self._get("/v4/height"))

    def get_time(self) -> ServerTime:
        """``GET /v4/time``: the server clock."""
        return self._decode(ServerTime, self._get("/v4/time"))

    # -- accounts ----------------------------------------------------------------------------------
    def get_subaccount(self, address: str, number: int) -> Subaccount:
        """``GET /v4/addresses/{address}/subaccountNumber/{n}`` (the body's ``subaccount``)."""
        address = validate_address(address)
        n = validate_subaccount_number(number)
        body = self._get(f"/v4/addresses/{_path_segment(address)}/subaccountNumber/{n}")
        return self._decode(SubaccountResponse, body).subaccount

    def get_parent_subaccount(self, address: str, number: int) -> ParentSubaccount:
        """``GET /v4/addresses/{address}/parentSubaccountNumber/{n}`` (n < 128)."""
        address = validate_address(address)
        n = validate_subaccount_number(number, parent=True)
        body = self._get(f"/v4/addresses/{_path_segment(address)}/parentSubaccountNumber/{n}")
        return self._decode(ParentSubaccountResponse, body).subaccount

    def get_address(self, address: str) -> AddressResponse:
        """``GET /v4/addresses/{address}``: every subaccount of the address."""
        address = validate_address(address)
        body = self._get(f"/v4/addresses/{_path_segment(address)}")
        return self._decode(AddressResponse, body)

    def get_orders(
        self,
        address: str,
        subaccount_number: int,
        *,
        status: StatusArg = None,
        ticker: Optional[str] = None,
        limit: Optional[int] = None,
        good_til_block_after: Optional[int] = None,
    ) -> List[Order]:
        """``GET /v4/orders``: the subaccount's orders, newest first. ``status`` is one value, a
        list or a comma-separated str of ``OPEN, FILLED, CANCELED, BEST_EFFORT_CANCELED,
        UNTRIGGERED, BEST_EFFORT_OPENED``."""
        params: Dict[str, Any] = {
            "address": validate_address(address),
            "subaccountNumber": validate_subaccount_number(subaccount_number),
        }
        params.update(self._order_params(status, ticker, limit, good_til_block_after))
        return self._decode_list(Order, self._get("/v4/orders", params))

    def get_parent_orders(
        self,
        address: str,
        parent_subaccount_number: int,
        *,
        status: StatusArg = None,
        ticker: Optional[str] = None,
        limit: Optional[int] = None,
        good_til_block_after: Optional[int] = None,
    ) -> List[Order]:
        """``GET /v4/orders/parentSubaccountNumber``: orders of every child subaccount."""
        params: Dict[str, Any] = {
            "address": validate_address(address),
            "parentSubaccountNumber": validate_subaccount_number(
                parent_subaccount_number, parent=True
            ),
        }
        params.update(self._order_params(status, ticker, limit, good_til_block_after))
        return self._decode_list(Order, self._get("/v4/orders/parentSubaccountNumber", params))

    def get_fills(
        self,
        address: str,
        subaccount_number: int,
        *,
        market: Optional[str] = None,
        market_type: Optional[str] = None,
        limit: Optional[int] = None,
        created_before_or_at_height: Optional[int] = None,
        created_before_or_at: Optional[TimeLike] = None,
    ) -> List[Fill]:
        """``GET /v4/fills``: the subaccount's fills, newest first. ``market`` implies
        ``market_type="PERPETUAL"`` unless given (comlink requires both together)."""
        params: Dict[str, Any] = {
            "address": validate_address(address),
            "subaccountNumber": validate_subaccount_number(subaccount_number),
        }
        if market is not None:
            params["market"] = validate_ticker(market)
            params["marketType"] = (market_type or "PERPETUAL").upper()
        elif market_type is not None:
            raise ValueError("market_type needs market (comlink requires both together)")
        params.update(self._trade_params(limit, created_before_or_at_height, created_before_or_at))
        return self._decode(FillsResponse, self._get("/v4/fills", params)).fills

    def get_perpetual_positions(
        self,
        address: str,
        subaccount_number: int,
        *,
        status: StatusArg = None,
        limit: Optional[int] = None,
        created_before_or_at_height: Optional[int] = None,
        created_before_or_at: Optional[TimeLike] = None,
    ) -> List[PerpetualPosition]:
        """``GET /v4/perpetualPositions``: positions, filtered by ``OPEN, CLOSED, LIQUIDATED``."""
        params: Dict[str, Any] = {
            "address": validate_address(address),
            "subaccountNumber": validate_subaccount_number(subaccount_number),
        }
        statuses = _check_statuses(status, POSITION_STATUSES)
        if statuses:
            params["status"] = statuses
        params.update(self._trade_params(limit, created_before_or_at_height, created_before_or_at))
        body = self._get("/v4/perpetualPositions", params)
        return self._decode(PerpetualPositionsResponse, body).positions

    def get_asset_positions(self, address: str, subaccount_number: int) -> List[AssetPosition]:
        """``GET /v4/assetPositions``: the subaccount's asset (collateral) positions."""
        params: Dict[str, Any] = {
            "address": validate_address(address),
            "subaccountNumber": validate_subaccount_number(subaccount_number),
        }
        body = self._get("/v4/assetPositions", params)
        return self._decode(AssetPositionsResponse, body).positions

    # -- pagination --------------------------------------------------------------------------------
    def iter_trades(
        self,
        ticker: str,
        *,
        start_height: Optional[int] = None,
        until: Union[int, TimeLike, None] = None,
        page_size: int = API_LIMIT,
    ) -> Iterator[Trade]:
        """Every trade at or below ``start_height`` (default: the newest), newest first, until
        (inclusive) ``until``: a block height (int) or a time (datetime / ISO string).

        Pages are fetched lazily with ``createdBeforeOrAtHeight``. Trades share heights and a page
        may end in the middle of one, so after a full page the next request starts again at the
        page's lowest height and already-seen ids are skipped; once a page brings nothing new the
        cursor moves to ``min(height) - 1`` (docs/protocol.md §5.4). A single height holding more
        than ``page_size`` trades cannot be listed completely by this endpoint: use a large
        ``page_size``.
        """
        ticker = validate_ticker(ticker)
        cursor = None if start_height is None else _check_int("start_height", start_height, 0)
        page_size = _check_limit(page_size, "page_size")
        stop_height: Optional[int] = None
        stop_time: Optional[datetime] = None
        if isinstance(until, int) and not isinstance(until, bool):
            stop_height = _check_int("until", until, 0)
        elif until is not None:
            stop_time = _to_datetime("until", until)
        seen: Set[str] = set()
        while True:
            page = self.get_trades(ticker, limit=page_size, created_before_or_at_height=cursor)
            fresh = 0
            lowest: Optional[int] = None
            for trade in page:
                h = trade.created_at_height
                if h is None:
                    raise DecodeError(
                        "trade without createdAtHeight cannot be paged",
                        field="createdAtHeight",
                        raw=trade.id,
                    )
                lowest = h if lowest is None else min(lowest, h)
                if (stop_height is not None and h < stop_height) or (
                    stop_time is not None and trade.created_at < stop_time
                ):
                    return
                if trade.id in seen:
                    continue
                seen.add(trade.id)
                fresh += 1
                yield trade
            if len(page) < page_size or lowest is None:
                return  # the server had nothing more at or below the cursor
            if fresh and any(t.created_at_height != lowest for t in page):
                cursor = lowest  # re-read the lowest height: the page may have cut it short
            else:
                if fresh:
                    logger.warning(
                        "iter_trades %s: more than %d trades at height %d; some may be skipped",
                        ticker,
                        page_size,
                        lowest,
                    )
                if lowest == 0:
                    return
                cursor = lowest - 1
            # Ids at or above the new cursor's exclusive bound can never come back: forget them.
            seen = {t.id for t in page if t.created_at_height == lowest}

    def iter_candles(
        self,
        ticker: str,
        resolution: Union[CandleResolution, str],
        *,
        start: Optional[TimeLike] = None,
        end: Optional[TimeLike] = None,
        page_size: int = API_LIMIT,
    ) -> Iterator[Candle]:
        """Every candle with ``start <= started_at < end`` (open bounds when None), newest first,
        paging backwards with ``toISO = oldest.started_at`` (docs/protocol.md §5.3)."""
        ticker = validate_ticker(ticker)
        resolution = validate_resolution(resolution)
        page_size = _check_limit(page_size, "page_size")
        start_dt = None if start is None else _to_datetime("start", start)
        to_dt = None if end is None else _to_datetime("end", end)
        if start_dt is not None and to_dt is not None and start_dt >= to_dt:
            return
        while True:
            page = self.get_candles(
                ticker, resolution, limit=page_size, from_iso=start_dt, to_iso=to_dt
            )
            oldest: Optional[datetime] = None
            for candle in page:
                if to_dt is not None and candle.started_at >= to_dt:
                    continue  # defensive: never repeat or go forwards
                if start_dt is not None and candle.started_at < start_dt:
                    return
                oldest = candle.started_at if oldest is None else min(oldest, candle.started_at)
                yield candle
            if len(page) < page_size or oldest is None:
                return
            to_dt = oldest

    # -- escape hatch ------------------------------------------------------------------------------
    def get_json(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        """``GET {base}{path}`` (e.g. ``"/v4/historicalFunding/BTC-USD"``) with the same retries
        and errors as the typed methods; returns the parsed JSON, untyped and unvalidated."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a str starting with '/', got {path!r}")
        return self._get(path, params)

    # -- plumbing ----------------------------------------------------------------------------------
    @staticmethod
    def _trade_params(
        limit: Optional[int], height: Optional[int], before: Optional[TimeLike]
    ) -> Dict[str, Any]:
        params: Dict[str, Any] = {}
        if limit is not None:
            params["limit"] = _check_limit(limit)
        if height is not None:
            params["createdBeforeOrAtHeight"] = _check_int("created_before_or_at_height", height, 0)
        if before is not None:
            params["createdBeforeOrAt"] = _check_time("created_before_or_at", before)
        return params

    @staticmethod
    def _order_params(
        status: StatusArg,
        ticker: Optional[str],
        limit: Optional[int],
        good_til_block_after: Optional[int],
    ) -> Dict[str, Any]:
        params: Dict[str, Any] = {}
        statuses = _check_statuses(status, ORDER_STATUSES)
        if statuses:
            params["status"] = statuses
        if ticker is not None:
            params["ticker"] = validate_ticker(ticker)
        if limit is not None:
            params["limit"] = _check_limit(limit)
        if good_til_block_after is not None:
            params["goodTilBlockAfter"] = _check_int(
                "good_til_block_after", good_til_block_after, 0
            )
        return params

    def _decode(self, model: Type[T], body: Any) -> T:
        try:
            return decoder_for(model)(body)
        except Exception as exc:
            where, error = locate_error(model, body)
            raise DecodeError(
                f"malformed {model.__name__} response: {error}", field=where, raw=body
            ) from exc

    def _decode_list(self, model: Type[T], body: Any) -> List[T]:
        if not isinstance(body, list):
            raise DecodeError(
                f"expected a JSON array of {model.__name__}, got {type(body).__name__}", raw=body
            )
        decode = decoder_for(model)
        out: List[T] = []
        for i, item in enumerate(body):
            try:
                out.append(decode(item))
            except Exception as exc:
                where, error = locate_error(model, item, f"[{i}]")
                raise DecodeError(
                    f"malformed {model.__name__} response: {error}", field=where, raw=body
                ) from exc
        return out

    def _get(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        """GET ``path`` with retries; the parsed JSON body of a 2xx answer."""
        if self._closed.is_set():
            raise RestConnectionError("the REST client is closed", url=self._base + path)
        url = self._base + path
        attempts = self._retries + 1
        limiter = self._limiter
        for attempt in range(1, attempts + 1):
            if limiter is not None:
                limiter.acquire(path)
            try:
                response = self._session.get(
                    url,
                    params=params,
                    timeout=self._timeout,
                    verify=self._verify,
                    proxies=self._proxies,
                    headers=self._headers,
                    allow_redirects=True,
                )
            except requests.exceptions.SSLError as exc:
                raise RestConnectionError(
                    f"GET {url}: TLS error: {exc}", url=url, attempts=attempt
                ) from exc
            except requests.exceptions.Timeout as exc:
                reason = f"timed out after {self._timeout:g}s"
                if attempt >= attempts:
                    raise RestTimeoutError(
                        f"GET {url} {reason} on all {attempts} attempt(s)",
                        url=url,
                        attempts=attempt,
                    ) from exc
                self._wait(url, attempt, attempts, reason, self._delay(attempt))
                continue
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                reason = f"connection error: {exc}"
                if attempt >= attempts:
                    raise RestConnectionError(
                        f"GET {url} failed on all {attempts} attempt(s): {exc}",
                        url=url,
                        attempts=attempt,
                    ) from exc
                self._wait(url, attempt, attempts, reason, self._delay(attempt))
                continue
            except requests.exceptions.RequestException as exc:  # redirects, bad headers...
                raise RestConnectionError(f"GET {url}: {exc}", url=url, attempts=attempt) from exc
            status = response.status_code
            if 200 <= status < 300:
                return self._parse(response)
            error = RestError(status, _error_text(response), url=response.url or url)
            retryable = status == 429 or status >= 500
            retry_after = None
            if status == 429:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if limiter is not None:
                    limiter.throttle(path, retry_after)  # the next acquire() waits or defers
            if not retryable or attempt >= attempts:
                raise error
            delay = self._delay(attempt)
            if status == 429:
                if limiter is not None:
                    delay = 0.0
                elif retry_after is not None:
                    delay = min(retry_after, self._max_retry_wait)
            self._wait(url, attempt, attempts, f"HTTP {status} {error.msg}", delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with equal jitter: ``uniform(cap / 2, cap)``."""
        if self._backoff <= 0:
            return 0.0
        cap = min(self._max_retry_wait, self._backoff * 2.0 ** min(attempt - 1, 62))
        return self._rng.uniform(cap / 2, cap)

    def _wait(self, url: str, attempt: int, attempts: int, reason: str, delay: float) -> None:
        logger.info("GET %s: %s; retry %d/%d in %.3fs", url, reason, attempt, attempts - 1, delay)
        if delay > 0 and self._closed.wait(delay):
            raise RestConnectionError(
                f"GET {url}: client closed while waiting to retry", url=url, attempts=attempt
            )
        if self._closed.is_set():
            raise RestConnectionError(
                f"GET {url}: client closed while waiting to retry", url=url, attempts=attempt
            )

    @staticmethod
    def _parse(response: requests.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError as exc:
            snippet = response.text[:_BODY_SNIPPET]
            raise DecodeError(
                f"malformed JSON body from {response.url} (HTTP {response.status_code}): {exc}",
                raw=snippet,
            ) from exc


def _error_text(response: requests.Response) -> str:
    """The server's ``errors[0].msg``, else the body text (an HTML page's ``<pre>``), trimmed."""
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            msg = errors[0].get("msg")
            if isinstance(msg, str) and msg:
                return msg
        for key in ("msg", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    match = _HTML_PRE.search(text)
    if match:
        text = match.group(1)
    text = text.strip()
    if not text:
        return response.reason or f"HTTP {response.status_code}"
    return text[:_BODY_SNIPPET]


def _retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in seconds. dYdX sends milliseconds (docs/protocol.md §5.0); an HTTP-date
    (as a proxy might send) is accepted too. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        ms = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    if ms != ms or ms < 0 or ms == float("inf"):
        return None
    return ms / 1000.0
