"""IndexerRestClient over real loopback HTTP.

Against a real ``IndexerEmulator`` (paused, so its REST truth is stable): every endpoint the
emulator serves returns typed models equal to the emulator's own raw body decoded with
``Model.from_dict``; 404/400 carry the server's text; 429 with ``Retry-After`` is retried; input
validation sends nothing; pagination is newest first and deduplicated.

Against a scripted local HTTP server (``FakeIndexer``): behaviour the emulator cannot produce on
demand — stalled answers (timeouts), dropped connections, 5xx, malformed bodies, TLS, and the
account endpoints the emulator lacks (``/v4/fills``, ``/v4/perpetualPositions``,
``/v4/assetPositions``).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

import pytest

from dydx_ws import DecodeError, DydxWsError, Network, RestError
from dydx_ws.emulator import IndexerEmulator
from dydx_ws.models import (
    AddressResponse,
    AssetPositionsResponse,
    BlockHeight,
    CandleResolution,
    CandlesResponse,
    FillsResponse,
    Order,
    OrderbookResponse,
    OrderStatus,
    ParentSubaccountResponse,
    PerpetualMarketsResponse,
    PerpetualPositionsResponse,
    ServerTime,
    SubaccountResponse,
    TradesResponse,
    parse_timestamp,
)
from dydx_ws.protocol._validation import make_address
from dydx_ws.rest import IndexerRestClient, RestConnectionError, RestTimeoutError

MARKETS = ["BTC-USD", "ETH-USD"]
OTHER_ADDRESS = make_address(bytes(range(20)))


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emu() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(
        markets=MARKETS, seed=11, block_time=0.05, warmup_blocks=240, batch_interval=0.1
    ) as emulator:
        emulator.pause()  # no new blocks: the REST truth stays fixed for the whole module
        yield emulator


@pytest.fixture
def client(emu: IndexerEmulator) -> Iterator[IndexerRestClient]:
    with IndexerRestClient(emu.rest_url, timeout=5.0, retries=2, backoff=0.01) as rest:
        yield rest


@pytest.fixture
def fresh_limits(emu: IndexerEmulator) -> Iterator[None]:
    """Leave the module's emulator without rate limit or rejection after the test."""
    yield
    emu.set_rest_rate_limit(None)
    emu.reject_rest(0)


def served(emu: IndexerEmulator) -> int:
    return emu.stats()["rest_requests"]


def truth(emu: IndexerEmulator, target: str) -> Any:
    status, body = emu.rest_get(target)
    assert status == 200, (target, status, body)
    return body


class RetryLog(logging.Handler):
    """Collects ``dydx_ws.rest`` retry records and signals the first one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: List[logging.LogRecord] = []
        self.first = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.first.set()


@pytest.fixture
def retry_log() -> Iterator[RetryLog]:
    handler = RetryLog()
    log = logging.getLogger("dydx_ws.rest")
    old_level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)
    log.setLevel(old_level)


# ---------------------------------------------------------------------------------------------
# a scripted HTTP server for faults the emulator cannot produce
# ---------------------------------------------------------------------------------------------
Action = Union[str, Tuple[int, str, Dict[str, str]]]
STALL = "stall"  # read the request, never answer (until the server closes)
DROP = "drop"  # read the request, close the socket without an answer


def reply(status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> Action:
    text = body if isinstance(body, str) else json.dumps(body)
    return (status, text, dict(headers or {}))


class FakeIndexer:
    """Loopback HTTP/1.1 server answering each path from a script (the last action repeats)."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.scripts: Dict[str, List[Action]] = {}
        self.requests: List[str] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                path = urlsplit(self.path).path
                script = fake.scripts.get(path) or [reply(404, f"<pre>Cannot GET {path}</pre>")]
                action = script.pop(0) if len(script) > 1 else script[0]
                if action == STALL:
                    fake.release.wait(30)
                    self.close_connection = True
                    return
                if action == DROP:
                    self.close_connection = True
                    return
                assert isinstance(action, tuple)
                status, text, headers = action
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # failed TLS handshakes and dropped sockets are expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def script(self, path: str, *actions: Action) -> None:
        self.scripts[path] = list(actions)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if urlsplit(r).path == path)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakeIndexer]:
    server = FakeIndexer()
    yield server
    server.close()


HEIGHT_BODY = {"height": "66624132", "time": "2025-12-08T16:11:59.450Z"}


# ---------------------------------------------------------------------------------------------
# every endpoint equals the emulator's REST truth
# ---------------------------------------------------------------------------------------------
def test_construct_from_network_and_urls(emu: IndexerEmulator) -> None:
    for target in (emu.network, emu.rest_url, emu.rest_url + "/", emu.rest_url + "/v4/"):
        with IndexerRestClient(target) as rest:
            assert rest.base_url == emu.rest_url
            assert rest.get_height().height == emu.height
    assert IndexerRestClient().base_url == Network.MAINNET.rest_url  # nothing sent
    for bad in ("indexer.dydx.trade", "ftp://x", ""):
        with pytest.raises(ValueError):
            IndexerRestClient(bad)
    with pytest.raises(ValueError):
        IndexerRestClient(emu.rest_url, retries=-1)
    with pytest.raises(ValueError):
        IndexerRestClient(emu.rest_url, timeout=0)


def test_markets(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    markets = client.get_perpetual_markets()
    expected = PerpetualMarketsResponse.from_dict(truth(emu, "/v4/perpetualMarkets")).markets
    assert markets == expected
    assert list(markets) == MARKETS
    one = client.get_perpetual_markets("ETH-USD")
    assert one == {"ETH-USD": expected["ETH-USD"]}


def test_orderbook(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    for ticker in MARKETS:
        book = client.get_orderbook(ticker)
        raw = truth(emu, f"/v4/orderbooks/perpetualMarket/{ticker}")
        assert book == OrderbookResponse.from_dict(raw)
        assert book.bids and book.asks and book.bids[0].price < book.asks[0].price


def test_trades_and_filters(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    base = "/v4/trades/perpetualMarket/BTC-USD"
    assert client.get_trades("BTC-USD") == TradesResponse.from_dict(truth(emu, base)).trades
    trades = client.get_trades("BTC-USD", limit=5)
    assert trades == TradesResponse.from_dict(truth(emu, base + "?limit=5")).trades
    assert len(trades) == 5
    height = trades[-1].created_at_height
    assert height is not None
    got = client.get_trades("BTC-USD", created_before_or_at_height=height - 1, limit=7)
    want = truth(emu, f"{base}?createdBeforeOrAtHeight={height - 1}&limit=7")
    assert got == TradesResponse.from_dict(want).trades
    assert all(t.created_at_height is not None and t.created_at_height < height for t in got)
    when = trades[2].created_at
    by_time = client.get_trades("BTC-USD", created_before_or_at=when)
    assert by_time and all(t.created_at <= when for t in by_time)
    # an ISO string is accepted as well as a datetime
    assert client.get_trades("BTC-USD", created_before_or_at=when.isoformat()) == by_time


def test_candles(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    base = "/v4/candles/perpetualMarkets/ETH-USD?resolution=1MIN"
    everything = CandlesResponse.from_dict(truth(emu, base)).candles
    assert client.get_candles("ETH-USD", "1MIN") == everything
    assert client.get_candles("ETH-USD", CandleResolution.ONE_MINUTE) == everything
    assert len(everything) >= 6
    mid = everything[3].started_at
    older = client.get_candles("ETH-USD", "1MIN", to_iso=mid, limit=2)
    assert older == everything[4:6]
    newer = client.get_candles("ETH-USD", "1MIN", from_iso=mid.isoformat())
    assert newer == everything[:4]
    five = CandlesResponse.from_dict(truth(emu, base.replace("1MIN", "5MINS"))).candles
    assert client.get_candles("ETH-USD", "5MINS") == five


def test_height_and_time(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    assert client.get_height() == BlockHeight.from_dict(truth(emu, "/v4/height"))
    before = time.time()
    server_time = client.get_time()
    assert isinstance(server_time, ServerTime)
    assert abs(server_time.epoch - before) < 5
    assert abs(server_time.iso.timestamp() - server_time.epoch) < 0.002


def test_accounts(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    addr = emu.demo_address
    for n in (0, 128):
        got = client.get_subaccount(addr, n)
        raw = truth(emu, f"/v4/addresses/{addr}/subaccountNumber/{n}")
        assert got == SubaccountResponse.from_dict(raw).subaccount
        assert got.subaccount_number == n
    parent = client.get_parent_subaccount(addr, 0)
    raw = truth(emu, f"/v4/addresses/{addr}/parentSubaccountNumber/0")
    assert parent == ParentSubaccountResponse.from_dict(raw).subaccount
    assert [c.subaccount_number for c in parent.child_subaccounts] == [0, 128]
    assert client.get_address(addr) == AddressResponse.from_dict(
        truth(emu, f"/v4/addresses/{addr}")
    )
    # an upper-case address is valid bech32 and is sent canonical (lower case)
    assert client.get_subaccount(addr.upper(), 0).address == addr


def test_orders(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    addr = emu.demo_address
    base = f"/v4/orders?address={addr}&subaccountNumber=0"
    every = [Order.from_dict(o) for o in truth(emu, base)]
    assert every, "the emulator's demo account has orders"
    assert client.get_orders(addr, 0) == every
    for status in (["OPEN", "UNTRIGGERED"], "open,untriggered", [OrderStatus.OPEN, "UNTRIGGERED"]):
        got = client.get_orders(addr, 0, status=status)
        want = [Order.from_dict(o) for o in truth(emu, base + "&status=OPEN,UNTRIGGERED")]
        assert got == want
        assert all(o.status in ("OPEN", "UNTRIGGERED") for o in got)
    got = client.get_orders(addr, 0, ticker="ETH-USD", limit=2, good_til_block_after=1)
    want_raw = truth(emu, base + "&ticker=ETH-USD&limit=2&goodTilBlockAfter=1")
    assert got == [Order.from_dict(o) for o in want_raw]
    parent = client.get_parent_orders(addr, 0, status="OPEN")
    raw = truth(emu, f"/v4/orders/parentSubaccountNumber?address={addr}&parentSubaccountNumber=0")
    want = [Order.from_dict(o) for o in raw if o["status"] == "OPEN"]
    assert parent == want


# ---------------------------------------------------------------------------------------------
# server errors carry the server's text; 4xx are not retried
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "status", "text"),
    [
        (lambda c, a: c.get_orderbook("FOO-USD"), 404, "FOO-USD not found in markets of type "),
        (lambda c, a: c.get_perpetual_markets("FOO-USD"), 404, "FOO-USD not found in markets"),
        (lambda c, a: c.get_trades("FOO-USD"), 400, "ticker must be a valid ticker (BTC-USD, etc)"),
        (lambda c, a: c.get_candles("FOO-USD", "1MIN"), 400, "ticker must be a valid ticker"),
        (
            lambda c, a: c.get_subaccount(a, 7),
            404,
            "No subaccount found with address {a} and subaccountNumber 7",
        ),
        (
            lambda c, a: c.get_subaccount(OTHER_ADDRESS, 0),
            404,
            f"No subaccount found with address {OTHER_ADDRESS} and subaccountNumber 0",
        ),
        (
            lambda c, a: c.get_parent_subaccount(a, 5),
            404,
            "No subaccount found with address {a} and parentSubaccountNumber 5",
        ),
        (lambda c, a: c.get_orders(a, 3), 404, "No subaccount found with address {a}"),
        (
            lambda c, a: c.get_json(
                "/v4/candles/perpetualMarkets/BTC-USD", {"resolution": "2MINS"}
            ),
            400,
            "resolution must be a valid Candle Resolution, one of 1MIN,5MINS,15MINS,30MINS,"
            "1HOUR,4HOURS,1DAY",
        ),
        (
            lambda c, a: c.get_json("/v4/perpetualMarkets", {"limit": 5000}),
            400,
            "limit must be a positive integer that is not greater than max: 1000",
        ),
        (lambda c, a: c.get_json("/v4/nothing"), 404, "Cannot GET /v4/nothing"),
    ],
)
def test_http_errors_carry_server_text(
    client: IndexerRestClient, emu: IndexerEmulator, call: Any, status: int, text: str
) -> None:
    addr = emu.demo_address
    before = served(emu)
    with pytest.raises(RestError) as info:
        call(client, addr)
    err = info.value
    assert err.status == status
    assert err.msg.startswith(text.format(a=addr)), err.msg
    assert emu.rest_url in err.url and str(status) in str(err)
    assert isinstance(err, DydxWsError)
    assert served(emu) - before == 1, "4xx other than 429 must not be retried"


# ---------------------------------------------------------------------------------------------
# input validation: ValueError, nothing sent
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda c, a: c.get_orderbook("btc-usd"),
        lambda c, a: c.get_orderbook("BTC/USD"),
        lambda c, a: c.get_perpetual_markets(""),
        lambda c, a: c.get_trades("BTC-USD", limit=0),
        lambda c, a: c.get_trades("BTC-USD", limit=1001),
        lambda c, a: c.get_trades("BTC-USD", limit=True),
        lambda c, a: c.get_trades("BTC-USD", created_before_or_at_height=-1),
        lambda c, a: c.get_trades("BTC-USD", created_before_or_at="yesterday"),
        lambda c, a: c.get_candles("BTC-USD", "1min"),
        lambda c, a: c.get_candles("BTC-USD", "2MINS"),
        lambda c, a: c.get_candles("BTC-USD", "1MIN", from_iso=12345),
        lambda c, a: c.get_subaccount(a[:-1] + ("q" if a[-1] != "q" else "p"), 0),
        lambda c, a: c.get_subaccount("cosmos1xyz", 0),
        lambda c, a: c.get_subaccount(a, 128000),
        lambda c, a: c.get_subaccount(a, -1),
        lambda c, a: c.get_subaccount(a, "0"),
        lambda c, a: c.get_parent_subaccount(a, 128),
        lambda c, a: c.get_address("dydx1"),
        lambda c, a: c.get_orders(a, 0, status="OPENED"),
        lambda c, a: c.get_orders(a, 0, status=[]),
        lambda c, a: c.get_orders(a, 0, ticker="eth"),
        lambda c, a: c.get_orders(a, 0, good_til_block_after=-5),
        lambda c, a: c.get_parent_orders(a, 200),
        lambda c, a: c.get_fills(a, 0, market_type="PERPETUAL"),
        lambda c, a: c.get_perpetual_positions(a, 0, status="SHUT"),
        lambda c, a: c.get_asset_positions(a, 1.0),
        lambda c, a: list(c.iter_trades("BTC-USD", page_size=0)),
        lambda c, a: list(c.iter_trades("BTC-USD", until="not a time")),
        lambda c, a: list(c.iter_candles("BTC-USD", "1m")),
        lambda c, a: c.get_json("v4/height"),
    ],
)
def test_invalid_input_raises_before_sending(
    client: IndexerRestClient, emu: IndexerEmulator, call: Any
) -> None:
    before = served(emu)
    with pytest.raises(ValueError):
        call(client, emu.demo_address)
    assert served(emu) == before


# ---------------------------------------------------------------------------------------------
# pagination
# ---------------------------------------------------------------------------------------------
def all_trades(emu: IndexerEmulator, ticker: str) -> List[Any]:
    raw = truth(emu, f"/v4/trades/perpetualMarket/{ticker}?limit=1000")["trades"]
    assert len(raw) < 1000, "the module's emulator must hold fewer trades than one page"
    return TradesResponse.from_dict({"trades": raw}).trades


def page_size_cutting_a_height(trades: List[Any], minimum: int) -> int:
    """A page size > ``minimum`` whose first page ends in the middle of a block height."""
    for size in range(minimum + 1, len(trades) // 2):
        if trades[size - 1].created_at_height == trades[size].created_at_height:
            return size
    raise AssertionError("no page boundary inside a height: pick another seed")


def test_iter_trades_newest_first_deduplicated_across_pages(
    client: IndexerRestClient, emu: IndexerEmulator
) -> None:
    expected = all_trades(emu, "BTC-USD")
    per_height = Counter(t.created_at_height for t in expected)
    busiest = max(per_height.values())
    assert busiest > 1, "trades share heights in the emulator"
    size = page_size_cutting_a_height(expected, busiest)
    before = served(emu)
    got = list(client.iter_trades("BTC-USD", page_size=size))
    requests_made = served(emu) - before
    assert [t.id for t in got] == [t.id for t in expected]  # newest first, no gap, no repeat
    assert got == expected
    assert requests_made >= len(expected) // size + 1
    # a single page holding everything stops after one request
    before = served(emu)
    assert list(client.iter_trades("BTC-USD")) == expected
    assert served(emu) - before == 1


def test_iter_trades_bounds(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    expected = all_trades(emu, "ETH-USD")
    heights = sorted({t.created_at_height or 0 for t in expected}, reverse=True)
    top, bottom = heights[3], heights[-4]
    got = list(client.iter_trades("ETH-USD", start_height=top, until=bottom, page_size=20))
    want = [t for t in expected if bottom <= t.created_at_height <= top]
    assert got == want and got
    cutoff = expected[len(expected) // 2].created_at
    by_time = list(client.iter_trades("ETH-USD", until=cutoff, page_size=20))
    assert by_time == [t for t in expected if t.created_at >= cutoff]
    assert list(client.iter_trades("ETH-USD", until=heights[0] + 1)) == []
    assert list(client.iter_trades("ETH-USD", start_height=1)) == []


def test_iter_trades_tiny_pages_terminate_without_duplicates(
    client: IndexerRestClient, emu: IndexerEmulator
) -> None:
    expected = all_trades(emu, "BTC-USD")
    got = list(client.iter_trades("BTC-USD", page_size=2))
    ids = [t.id for t in got]
    assert len(ids) == len(set(ids))
    assert set(ids) <= {t.id for t in expected}
    heights = [t.created_at_height or 0 for t in got]
    assert heights == sorted(heights, reverse=True)
    assert heights[-1] == expected[-1].created_at_height  # reached the oldest height


def test_iter_candles(client: IndexerRestClient, emu: IndexerEmulator) -> None:
    raw = truth(emu, "/v4/candles/perpetualMarkets/BTC-USD?resolution=1MIN&limit=1000")["candles"]
    expected = CandlesResponse.from_dict({"candles": raw}).candles
    assert len(expected) >= 8
    before = served(emu)
    got = list(client.iter_candles("BTC-USD", "1MIN", page_size=3))
    assert got == expected
    assert served(emu) - before == len(expected) // 3 + 1
    start, end = expected[-2].started_at, expected[1].started_at
    bounded = list(client.iter_candles("BTC-USD", "1MIN", start=start, end=end, page_size=2))
    assert bounded == expected[2:-1]
    assert list(client.iter_candles("BTC-USD", "1MIN", start=end, end=start)) == []
    assert list(client.iter_candles("BTC-USD", "1MIN", end=expected[-1].started_at)) == []


# ---------------------------------------------------------------------------------------------
# 429 / Retry-After / retry budget (emulator)
# ---------------------------------------------------------------------------------------------
def test_429_retry_after_is_honoured(
    emu: IndexerEmulator, fresh_limits: None, retry_log: RetryLog
) -> None:
    # backoff alone would retry within ~3 ms; only waiting for Retry-After (ms) can succeed
    with IndexerRestClient(emu.rest_url, retries=2, backoff=0.001) as rest:
        started = time.monotonic()
        emu.reject_rest(0.4)
        assert rest.get_height().height == emu.height
        assert time.monotonic() - started >= 0.3
    assert retry_log.records and "429" in retry_log.records[0].getMessage()
    assert retry_log.records[0].levelno == logging.INFO


def test_rate_limiter_429s_are_absorbed(
    emu: IndexerEmulator, fresh_limits: None, retry_log: RetryLog
) -> None:
    emu.set_rest_rate_limit(2, 0.5)
    with IndexerRestClient(emu.rest_url, retries=3, backoff=0.001) as rest:
        heights = [rest.get_height().height for _ in range(5)]
    assert heights == [emu.height] * 5
    assert any("429" in r.getMessage() for r in retry_log.records)


def test_retry_budget_exhausted_raises_last_429(
    emu: IndexerEmulator, fresh_limits: None, retry_log: RetryLog
) -> None:
    emu.reject_rest(30)
    before = served(emu)
    started = time.monotonic()
    rest = IndexerRestClient(emu.rest_url, retries=2, max_retry_wait=0.05)
    with rest, pytest.raises(RestError) as info:
        rest.get_orderbook("BTC-USD")
    assert time.monotonic() - started < 2, "Retry-After (~30 s) must be capped by max_retry_wait"
    assert info.value.status == 429 and info.value.msg == "Too many requests"
    assert served(emu) - before == 3
    assert len(retry_log.records) == 2


def test_5xx_retried_then_succeeds(emu: IndexerEmulator, fresh_limits: None) -> None:
    emu.reject_rest(0.25, status=503)
    with IndexerRestClient(emu.rest_url, retries=10, backoff=0.02, max_retry_wait=0.1) as rest:
        assert rest.get_perpetual_markets("BTC-USD")["BTC-USD"].ticker == "BTC-USD"


def test_close_interrupts_retry_wait(
    emu: IndexerEmulator, fresh_limits: None, retry_log: RetryLog
) -> None:
    emu.reject_rest(30)
    rest = IndexerRestClient(emu.rest_url, retries=5, max_retry_wait=30)
    errors: List[BaseException] = []

    def call() -> None:
        try:
            rest.get_height()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert retry_log.first.wait(5)
    rest.close()
    worker.join(5)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RestConnectionError)
    assert "closed" in str(errors[0])
    with pytest.raises(RestConnectionError):
        rest.get_height()


# ---------------------------------------------------------------------------------------------
# transport faults, malformed bodies, endpoints the emulator lacks (scripted server)
# ---------------------------------------------------------------------------------------------
def test_timeout_is_retried_then_raises(fake: FakeIndexer, retry_log: RetryLog) -> None:
    fake.script("/v4/height", STALL)
    started = time.monotonic()
    rest = IndexerRestClient(fake.url, timeout=0.2, retries=2, backoff=0)
    with rest, pytest.raises(RestTimeoutError) as info:
        rest.get_height()
    assert time.monotonic() - started < 3
    err = info.value
    assert isinstance(err, TimeoutError) and isinstance(err, DydxWsError)
    assert err.attempts == 3 and "timed out" in str(err) and "/v4/height" in str(err)
    assert fake.hits("/v4/height") == 3
    assert [r.getMessage().count("timed out") for r in retry_log.records] == [1, 1]


def test_timeout_then_success(fake: FakeIndexer) -> None:
    fake.script("/v4/height", STALL, reply(200, HEIGHT_BODY))
    with IndexerRestClient(fake.url, timeout=0.2, retries=1, backoff=0) as rest:
        assert rest.get_height() == BlockHeight.from_dict(HEIGHT_BODY)
    assert fake.hits("/v4/height") == 2


def test_dropped_connection_and_5xx_retried(fake: FakeIndexer) -> None:
    fake.script(
        "/v4/height",
        DROP,
        reply(500, {"errors": [{"msg": "Internal Server Error"}]}),
        reply(200, HEIGHT_BODY),
    )
    with IndexerRestClient(fake.url, retries=2, backoff=0.001) as rest:
        assert rest.get_height().height == 66624132
    assert fake.hits("/v4/height") == 3


def test_5xx_budget_exhausted(fake: FakeIndexer) -> None:
    fake.script("/v4/height", reply(502, "<html><pre>Bad Gateway</pre></html>"))
    rest = IndexerRestClient(fake.url, retries=1, backoff=0.001)
    with rest, pytest.raises(RestError) as info:
        rest.get_height()
    assert info.value.status == 502 and info.value.msg == "Bad Gateway"
    assert fake.hits("/v4/height") == 2


def test_429_without_retry_after_uses_backoff(fake: FakeIndexer) -> None:
    fake.script(
        "/v4/time",
        reply(429, {"errors": [{"msg": "Too many requests"}]}),
        reply(200, {"iso": "2025-12-08T16:11:56.125Z", "epoch": 1765210316.125}),
    )
    with IndexerRestClient(fake.url, retries=1, backoff=0.001) as rest:
        assert rest.get_time().epoch == 1765210316.125


def test_connection_refused(retry_log: RetryLog) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rest = IndexerRestClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.001)
    with rest, pytest.raises(RestConnectionError) as info:
        rest.get_height()
    assert not isinstance(info.value, RestTimeoutError)
    assert info.value.attempts == 3 and len(retry_log.records) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("this is not json", None),
        ({"height": "abc", "time": "2025-12-08T16:11:59.450Z"}, "height"),
        ({"time": "2025-12-08T16:11:59.450Z"}, "height"),
        ({"height": "1", "time": "not a time"}, "time"),
    ],
)
def test_malformed_body_raises_decode_error(
    fake: FakeIndexer, body: Any, field: Optional[str]
) -> None:
    fake.script("/v4/height", reply(200, body))
    with IndexerRestClient(fake.url, retries=2) as rest, pytest.raises(DecodeError) as info:
        rest.get_height()
    assert info.value.field == field
    assert fake.hits("/v4/height") == 1, "a malformed 2xx body is not retried"


def test_malformed_orders_and_markets(fake: FakeIndexer) -> None:
    fake.script("/v4/orders", reply(200, {"orders": []}))
    fake.script(
        "/v4/perpetualMarkets",
        reply(200, {"markets": {"BTC-USD": {"ticker": "BTC-USD", "oraclePrice": "x"}}}),
    )
    with IndexerRestClient(fake.url) as rest:
        with pytest.raises(DecodeError, match="JSON array"):
            rest.get_orders(OTHER_ADDRESS, 0)
        with pytest.raises(DecodeError) as info:
            rest.get_perpetual_markets()
    assert info.value.field == "markets.BTC-USD.oraclePrice"


FILLS = {
    "fills": [
        {
            "id": "a4a3d1c4-6a1b-5d3e-8e0b-1f6c1c2d3e4f",
            "side": "BUY",
            "liquidity": "TAKER",
            "type": "LIMIT",
            "market": "ETH-USD",
            "marketType": "PERPETUAL",
            "price": "2655.1",
            "size": "0.002",
            "fee": "0.002655",
            "createdAt": "2024-08-12T14:06:01.172Z",
            "createdAtHeight": "18794557",
            "orderId": "5a1c",
            "clientMetadata": "1",
            "subaccountNumber": 0,
        }
    ]
}
POSITIONS = {
    "positions": [
        {
            "market": "ETH-USD",
            "status": "OPEN",
            "side": "SHORT",
            "size": "-0.007",
            "maxSize": "-0.001",
            "entryPrice": "2656.54",
            "exitPrice": None,
            "realizedPnl": "0.01",
            "unrealizedPnl": "-0.2",
            "createdAt": "2024-08-12T14:06:01.172Z",
            "createdAtHeight": "18794557",
            "closedAt": None,
            "sumOpen": "0.007",
            "sumClose": "0",
            "netFunding": "0",
            "subaccountNumber": 0,
        }
    ]
}
ASSETS = {
    "positions": [
        {"size": "45.2", "symbol": "USDC", "side": "LONG", "assetId": "0", "subaccountNumber": 0}
    ]
}


def test_account_endpoints_the_emulator_lacks(fake: FakeIndexer) -> None:
    fake.script("/v4/fills", reply(200, FILLS))
    fake.script("/v4/perpetualPositions", reply(200, POSITIONS))
    fake.script("/v4/assetPositions", reply(200, ASSETS))
    with IndexerRestClient(fake.url + "/v4") as rest:
        fills = rest.get_fills(
            OTHER_ADDRESS, 0, market="ETH-USD", limit=10, created_before_or_at_height=18794557
        )
        positions = rest.get_perpetual_positions(OTHER_ADDRESS, 0, status=["open", "CLOSED"])
        assets = rest.get_asset_positions(OTHER_ADDRESS, 0)
    assert fills == FillsResponse.from_dict(FILLS).fills
    assert positions == PerpetualPositionsResponse.from_dict(POSITIONS).positions
    assert assets == AssetPositionsResponse.from_dict(ASSETS).positions
    queries = {urlsplit(r).path: parse_qs(urlsplit(r).query) for r in fake.requests}
    assert queries["/v4/fills"] == {
        "address": [OTHER_ADDRESS],
        "subaccountNumber": ["0"],
        "market": ["ETH-USD"],
        "marketType": ["PERPETUAL"],
        "limit": ["10"],
        "createdBeforeOrAtHeight": ["18794557"],
    }
    assert queries["/v4/perpetualPositions"]["status"] == ["OPEN,CLOSED"]
    assert queries["/v4/assetPositions"] == {
        "address": [OTHER_ADDRESS],
        "subaccountNumber": ["0"],
    }


def test_timestamps_sent_in_wire_form(fake: FakeIndexer) -> None:
    fake.script("/v4/candles/perpetualMarkets/BTC-USD", reply(200, {"candles": []}))
    with IndexerRestClient(fake.url) as rest:
        naive = parse_timestamp("2025-12-08T16:11:00Z").replace(tzinfo=None)
        assert rest.get_candles("BTC-USD", "1HOUR", from_iso=naive, to_iso="2025-12-09") == []
    query = parse_qs(urlsplit(fake.requests[0]).query)
    assert query == {
        "resolution": ["1HOUR"],
        "fromISO": ["2025-12-08T16:11:00.000Z"],
        "toISO": ["2025-12-09T00:00:00.000Z"],
    }


def test_tls_verified_by_default(tmp_path: Path, retry_log: RetryLog) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = FakeIndexer(tls=context)
    try:
        server.script("/v4/height", reply(200, HEIGHT_BODY))
        rest = IndexerRestClient(server.url, retries=3, backoff=0.001)
        with rest, pytest.raises(RestConnectionError) as info:
            rest.get_height()
        assert "TLS" in str(info.value) and info.value.attempts == 1  # not retried
        assert retry_log.records == []
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        with IndexerRestClient(server.url, verify=str(bundle)) as rest:
            assert rest.get_height().height == 66624132
    finally:
        server.close()
