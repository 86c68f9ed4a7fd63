"""The comlink REST subset (``/v4/...``): routing, query validation and response bodies.

Pure request -> response logic over the simulator (no sockets); ``httpd`` serves it over HTTP and
``ws`` calls it in-process for subscription snapshots, exactly as socks calls comlink.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from .candles import RESOLUTIONS
from .config import EmulatorConfig
from .jsutil import dumps, iso, parse_iso
from .simulator import MarketSimulator, Subaccount

# APIOrderStatus: OrderStatus (which includes ERROR) plus the API-only BEST_EFFORT_OPENED
# (docs/protocol.md §3.9)
ORDER_STATUSES = (
    "OPEN",
    "FILLED",
    "CANCELED",
    "BEST_EFFORT_CANCELED",
    "UNTRIGGERED",
    "ERROR",
    "BEST_EFFORT_OPENED",
)
CACHE_DEFAULT = "public, max-age=1"
CACHE_NONE = "no-cache, no-store, no-transform"
_INT = re.compile(r"^-?\d+$")
_ADDRESS = re.compile(r"[A-Za-z0-9]{1,90}")

Query = Dict[str, List[str]]


@dataclass
class RestResponse:
    status: int
    body: str
    headers: Dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


class RestError(Exception):
    def __init__(self, status: int, body: Dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _errors(msg: str) -> Dict[str, Any]:
    return {"errors": [{"msg": msg}]}


class _Validator:
    """Collects express-validator style errors: ``{value, msg, param, location}``."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.errors: List[Dict[str, Any]] = []

    def fail(self, param: str, value: Any, msg: str, location: str = "query") -> None:
        self.errors.append({"value": value, "msg": msg, "param": param, "location": location})

    def raw(self, name: str) -> Optional[str]:
        values = self.query.get(name)
        return values[-1] if values else None

    def int_param(
        self, name: str, lo: int, hi: Optional[int], msg: str, default: Optional[int] = None
    ) -> Optional[int]:
        value = self.raw(name)
        if value is None:
            return default
        if not _INT.match(value.strip()) or int(value) < lo or (hi is not None and int(value) > hi):
            self.fail(name, value, msg)
            return default
        return int(value)

    def iso_param(self, name: str) -> Optional[float]:
        value = self.raw(name)
        if value is None:
            return None
        try:
            return parse_iso(value)
        except ValueError:
            self.fail(name, value, f"{name} must be a valid ISO 8601 date")
            return None

    def check(self) -> None:
        if self.errors:
            raise RestError(400, {"errors": self.errors})


class Comlink:
    """Routes GET requests to handlers; each handler returns a JSON-able body."""

    def __init__(self, sim: MarketSimulator, config: EmulatorConfig) -> None:
        self.sim = sim
        self.config = config
        self._routes: List[Tuple[re.Pattern[str], Callable[..., Any]]] = [
            (re.compile(r"^/v4/perpetualMarkets/?$"), self._markets),
            (re.compile(r"^/v4/perpetualMarkets/([^/]+)$"), self._market),
            (re.compile(r"^/v4/orderbooks/perpetualMarket/([^/]+)$"), self._orderbook),
            (re.compile(r"^/v4/trades/perpetualMarket/([^/]+)$"), self._trades),
            (re.compile(r"^/v4/candles/perpetualMarkets/([^/]+)$"), self._candles),
            (re.compile(r"^/v4/height$"), self._height),
            (re.compile(r"^/v4/time$"), self._time),
            (re.compile(r"^/v4/addresses/([^/]+)$"), self._address),
            (re.compile(r"^/v4/addresses/([^/]+)/subaccountNumber/([^/]*)$"), self._subaccount),
            (re.compile(r"^/v4/addresses/([^/]+)/parentSubaccountNumber/([^/]*)$"), self._parent),
            (re.compile(r"^/v4/orders/parentSubaccountNumber$"), self._parent_orders),
            (re.compile(r"^/v4/orders/([^/]+)$"), self._order),
            (re.compile(r"^/v4/orders$"), self._orders),
        ]

    @property
    def limit_msg(self) -> str:
        limit = self.config.api_limit
        return f"limit must be a positive integer that is not greater than max: {limit}"

    def get(self, target: str) -> RestResponse:
        """Answer ``GET target`` (path plus query string)."""
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        for pattern, handler in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            cache = CACHE_NONE if handler == self._time else CACHE_DEFAULT
            try:
                body = handler(query, *(unquote(g) for g in match.groups()))
            except RestError as exc:
                return RestResponse(exc.status, dumps(exc.body), {"Cache-Control": cache})
            return RestResponse(200, dumps(body), {"Cache-Control": cache})
        return not_found("GET", path)

    # ----- markets ----------------------------------------------------------------------------

    def _known(self, ticker: str) -> None:
        if ticker not in self.sim.markets:
            raise RestError(404, _errors(f"{ticker} not found in markets of type PERPETUAL"))

    def _valid_ticker(self, ticker: str, v: _Validator) -> None:
        if ticker not in self.sim.markets:
            v.fail("ticker", ticker, "ticker must be a valid ticker (BTC-USD, etc)", "params")

    def _markets(self, query: Query) -> Any:
        v = _Validator(query)
        limit = v.int_param(
            "limit", 1, self.config.api_limit, self.limit_msg, self.config.api_limit
        )
        ticker, market = v.raw("ticker"), v.raw("market")
        if ticker is not None and market is not None:
            v.fail("ticker", ticker, "Only one of ticker or market may be provided")
        v.check()
        wanted = ticker if ticker is not None else market
        if wanted is not None:
            self._known(wanted)
            return {"markets": {wanted: self.sim.market_object(wanted)}}
        tickers = list(self.sim.markets)[: limit or None]
        return {"markets": {t: self.sim.market_object(t) for t in tickers}}

    def _market(self, query: Query, ticker: str) -> Any:
        self._known(ticker)
        return {"market": self.sim.market_object(ticker)}

    def _orderbook(self, query: Query, ticker: str) -> Any:
        self._known(ticker)
        return self.sim.orderbook_view(ticker, self.config.orderbook_levels_limit)

    def _trades(self, query: Query, ticker: str) -> Any:
        v = _Validator(query)
        self._valid_ticker(ticker, v)
        limit = v.int_param(
            "limit", 1, self.config.api_limit, self.limit_msg, self.config.api_limit
        )
        height = v.int_param(
            "createdBeforeOrAtHeight",
            0,
            None,
            "createdBeforeOrAtHeight must be a non-negative integer",
        )
        before_ts = v.iso_param("createdBeforeOrAt")
        page = v.int_param("page", 1, None, "page must be a positive integer")
        v.check()
        assert limit is not None
        before = iso(before_ts) if before_ts is not None else None
        if page is None:
            return {"trades": self.sim.trades(ticker, limit, height, before)}
        # with ``page`` comlink orders by eventId ASC (oldest first), then createdAtHeight DESC;
        # a trade's id is its 24-hex eventId, so string order is event order
        everything = sorted(self.sim.trades(ticker, 10**9, height, before), key=lambda t: t["id"])
        offset = (page - 1) * limit
        return {
            "pageSize": limit,
            "totalResults": len(everything),
            "offset": offset,
            "trades": everything[offset : offset + limit],
        }

    def _candles(self, query: Query, ticker: str) -> Any:
        v = _Validator(query)
        self._valid_ticker(ticker, v)
        resolution = v.raw("resolution")
        if resolution not in RESOLUTIONS:
            v.fail(
                "resolution",
                resolution,
                "resolution must be a valid Candle Resolution, one of " + ",".join(RESOLUTIONS),
            )
        limit = v.int_param(
            "limit", 1, self.config.api_limit, self.limit_msg, self.config.api_limit
        )
        from_ts = v.iso_param("fromISO")
        to_ts = v.iso_param("toISO")
        v.check()
        assert limit is not None and resolution is not None
        series = self.sim.markets[ticker].candles
        return {"candles": series.query(resolution, limit, from_ts, to_ts)}

    def _height(self, query: Query) -> Any:
        return {"height": str(self.sim.height), "time": iso(self.sim.time)}

    def _time(self, query: Query) -> Any:
        now = time.time()
        return {"iso": iso(now), "epoch": round(now, 3)}

    # ----- accounts ---------------------------------------------------------------------------

    def _address_check(self, address: str, v: _Validator, location: str = "params") -> None:
        """comlink checks only the shape (alphanumeric, at most 90 characters): an address with
        a bad checksum, or one nobody uses, is simply not found (404)."""
        if not _ADDRESS.fullmatch(address):
            v.fail("address", address, "address must be a valid dydx address", location)

    def _address(self, query: Query, address: str) -> Any:
        v = _Validator(query)
        self._address_check(address, v)
        v.check()
        subs = (
            [s for _, s in sorted(self.sim.subaccounts.items())]
            if address == self.sim.demo_address
            else []
        )
        if not subs:
            raise RestError(404, _errors(f"No subaccounts found for address {address}"))
        oracle, imf = self.sim.oracle(), self.sim.imf()
        return {
            "subaccounts": [s.rest_subaccount(oracle, imf, self.sim.height) for s in subs],
            "totalTradingRewards": "0",
        }

    def _number(self, v: _Validator, name: str, value: str, hi: int, location: str) -> int:
        if not _INT.match(value) or not 0 <= int(value) <= hi:
            v.fail(
                name, value, f"{name} must be a non-negative integer less than {hi + 1}", location
            )
            return -1
        return int(value)

    def _subaccount(self, query: Query, address: str, number: str) -> Any:
        v = _Validator(query)
        self._address_check(address, v)
        n = self._number(v, "subaccountNumber", number, 128000, "params")
        v.check()
        body = self.sim.subaccount_object(address, n)
        if body is None:
            raise RestError(
                404, _errors(f"No subaccount found with address {address} and subaccountNumber {n}")
            )
        return {"subaccount": body}

    def _parent(self, query: Query, address: str, number: str) -> Any:
        v = _Validator(query)
        self._address_check(address, v)
        n = self._number(v, "parentSubaccountNumber", number, 127, "params")
        v.check()
        body = self.sim.parent_subaccount_object(address, n)
        if body is None:
            raise RestError(
                404,
                _errors(
                    f"No subaccount found with address {address} and parentSubaccountNumber {n}"
                ),
            )
        return {"subaccount": body}

    def _order_filters(
        self, v: _Validator
    ) -> Tuple[Optional[List[str]], Optional[str], int, Optional[int]]:
        statuses: Optional[List[str]] = None
        raw_statuses = v.query.get("status")
        if raw_statuses:
            statuses = [s.strip().upper() for raw in raw_statuses for s in raw.split(",") if s]
            if any(s not in ORDER_STATUSES for s in statuses):
                v.fail(
                    "status",
                    ",".join(raw_statuses),
                    "status must be one of " + ", ".join(ORDER_STATUSES),
                )
        ticker = v.raw("ticker")
        if ticker is not None and ticker not in self.sim.markets:
            v.fail("ticker", ticker, "ticker must be a valid ticker (BTC-USD, etc)")
        limit = v.int_param(
            "limit", 1, self.config.api_limit, self.limit_msg, self.config.api_limit
        )
        gtb = v.int_param(
            "goodTilBlockAfter", 0, None, "goodTilBlockAfter must be a non-negative integer"
        )
        assert limit is not None
        return statuses, ticker, limit, gtb

    def _orders(self, query: Query) -> Any:
        """``GET /v4/orders?address=&subaccountNumber=&…``: a bare array."""
        address, n, filters = self._orders_query(query, "subaccountNumber", 128000)
        sub = self.sim.subaccounts.get(n) if address == self.sim.demo_address else None
        if sub is None:
            raise RestError(
                404, _errors(f"No subaccount found with address {address} and subaccountNumber {n}")
            )
        return self.sim.orders([sub], *filters)

    def _parent_orders(self, query: Query) -> Any:
        """``GET /v4/orders/parentSubaccountNumber?address=&parentSubaccountNumber=&…``."""
        address, n, filters = self._orders_query(query, "parentSubaccountNumber", 127)
        children: List[Subaccount] = self.sim.children(address, n)
        if not children:
            raise RestError(
                404,
                _errors(
                    f"No subaccount found with address {address} and parentSubaccountNumber {n}"
                ),
            )
        return self.sim.orders(children, *filters)

    def _orders_query(
        self, query: Query, number_param: str, max_number: int
    ) -> Tuple[str, int, Tuple[Optional[List[str]], Optional[str], int, Optional[int]]]:
        """Validate the query of both order lists: (address, number, filters) or a 400."""
        v = _Validator(query)
        address = v.raw("address")
        if address is None:
            v.fail("address", address, "address must be a valid dydx address")
        else:
            self._address_check(address, v, "query")
        number = v.raw(number_param)
        n = self._number(v, number_param, number if number is not None else "", max_number, "query")
        filters = self._order_filters(v)
        v.check()
        assert address is not None
        return address, n, filters

    def _order(self, query: Query, order_id: str) -> Any:
        for sub in self.sim.subaccounts.values():
            order = sub.orders.get(order_id)
            if order is not None:
                return sub.rest_order(order)
        raise RestError(404, _errors(f"Unable to find order with orderId: {order_id}"))


def not_found(method: str, path: str) -> RestResponse:
    """Express's default 404 page for an unknown route."""
    body = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n"
        "</body>\n</html>\n"
    )
    return RestResponse(404, body, {}, "text/html; charset=utf-8")
