"""The clients the benchmarks compare, each measured the same way by a ``Probe``.

- ``sdk``: ``DydxWebSocketClient`` with its defaults (typed dataclass messages, local state, the
  worker pool; the callback runs on a worker thread).
- ``reference``: what a skilled user writes by hand instead of using an SDK: an asyncio loop
  with ``websockets`` decoding every frame with ``msgspec`` into typed structs (``Decimal`` money,
  aware ``datetime``), the callback on the loop. No local state.
- ``bare``: a bare ``websocket.WebSocketApp`` with ``json.loads`` in ``on_message``: what the
  official dYdX Python client does (dict messages, callbacks on the I/O thread).

Each runs in a fresh process, so its process CPU time is its own.
"""

import asyncio
import datetime as dt
import json
import os
import threading
import time
import tracemalloc
from array import array
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

ADDRESS = "dydx1kzsvkf2ghjqlysuffdkhcdctknl4rsvcx5hkm5"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Probe:
    """Counts callback deliveries after the snapshot; CPU, latency and memory from the first
    update (RSS also after a tenth of them, when bounded state has filled; with
    ``trace_allocations``, tracemalloc runs from the first update to the last)."""

    trace_allocations = False

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.t0 = self.t1 = 0.0
        self.cpu0 = self.cpu1 = 0.0
        # Preallocated (and so in the RSS at the first update): a growing list of ints would
        # be the only growth a long run (--soak) shows, ~40 B per update.
        self.latencies = array("q", bytes(8 * n))
        self.stamped = 0
        self.rss0 = self.rss_tenth = self.rss1 = 0.0
        self.traced = (0, 0)
        self.done = threading.Event()

    def hit(self, stamp: Optional[str]) -> None:
        now = time.monotonic_ns()
        if self.count == 0:
            self.rss0 = rss_mb()
            if self.trace_allocations:
                tracemalloc.start()
            self.t0 = time.perf_counter()
            self.cpu0 = time.process_time()
        if stamp is not None and stamp.isdigit():
            self.latencies[self.stamped] = now - int(stamp)
            self.stamped += 1
        self.count += 1
        if self.count == self.n // 10:
            self.rss_tenth = rss_mb()
        if self.count == self.n:
            self.t1 = time.perf_counter()
            self.cpu1 = time.process_time()
            self.rss1 = rss_mb()
            if self.trace_allocations:
                self.traced = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            self.done.set()

    def result(self) -> Dict[str, Any]:
        lat = sorted(self.latencies[: self.stamped])

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6 if lat else float("nan")

        return {
            "rate": self.n / (self.t1 - self.t0),
            "cpu_us": (self.cpu1 - self.cpu0) / self.n * 1e6,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": lat[-1] / 1e6 if lat else float("nan"),
            "rss_start_mb": self.rss0,
            "rss_tenth_mb": self.rss_tenth,
            "rss_end_mb": self.rss1,
            "retained_b": self.traced[0] / self.n,
            "peak_kb": self.traced[1] / 1024,
        }


# -- SDK ---------------------------------------------------------------------------------------
def run_sdk(port: int, n: int, sub: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    from dydx_ws import DydxWebSocketClient

    probe = Probe(n)
    client = DydxWebSocketClient(url=f"ws://127.0.0.1:{port}", check_interval=None)

    def on_message(msg: Any) -> None:
        if not msg.is_snapshot:
            probe.hit(msg.connection_id)

    if sub["channel"] == "v4_orderbook":
        client.subscribe_orderbook(sub["id"], on_message)
    else:
        client.subscribe_subaccount(ADDRESS, 0, on_message)
    with client:
        if not probe.done.wait(timeout):
            raise RuntimeError(f"SDK client saw {probe.count} of {n} in {timeout} s")
    return probe.result()


# -- bare WebSocketApp (the official client's way) ----------------------------------------------
def run_bare(port: int, n: int, sub: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    import websocket

    probe = Probe(n)

    def on_message(ws: Any, data: str) -> None:
        msg = json.loads(data)
        if msg.get("type") == "channel_data":
            probe.hit(msg["connection_id"])

    app = websocket.WebSocketApp(
        f"ws://127.0.0.1:{port}",
        on_open=lambda ws: ws.send(json.dumps(sub)),
        on_message=on_message,
    )
    thread = threading.Thread(target=app.run_forever, name="bench-bare", daemon=True)
    thread.start()
    try:
        if not probe.done.wait(timeout):
            raise RuntimeError(f"bare client saw {probe.count} of {n} in {timeout} s")
    finally:
        app.close()
        thread.join(1)  # its select() may sleep on; a daemon thread, and the process ends here
    return probe.result()


# -- websockets + msgspec (the hand-written reference) ------------------------------------------
def _reference_types() -> Tuple[Any, Any]:
    import msgspec

    class Base(msgspec.Struct, rename="camel", tag_field="type", omit_defaults=True):
        pass

    class Connected(Base, tag="connected"):
        connection_id: str = msgspec.field(name="connection_id")
        message_id: int = msgspec.field(name="message_id")

    class Order(msgspec.Struct, rename="camel"):
        id: str
        subaccount_id: str
        client_id: str
        clob_pair_id: str
        side: str
        size: Decimal
        total_filled: Decimal
        price: Decimal
        type: str
        status: str
        time_in_force: str
        post_only: bool
        reduce_only: bool
        order_flags: str
        ticker: str
        client_metadata: Optional[str] = None
        good_til_block: Optional[int] = None
        good_til_block_time: Optional[dt.datetime] = None
        created_at_height: Optional[int] = None
        trigger_price: Optional[Decimal] = None
        updated_at: Optional[dt.datetime] = None
        updated_at_height: Optional[int] = None

    class Fill(msgspec.Struct, rename="camel"):
        id: str
        subaccount_id: str
        side: str
        liquidity: str
        type: str
        clob_pair_id: str
        size: Decimal
        price: Decimal
        quote_amount: Decimal
        event_id: str
        transaction_hash: str
        created_at: dt.datetime
        created_at_height: int
        ticker: str
        fee: Decimal
        order_id: Optional[str] = None
        client_metadata: Optional[str] = None

    class Position(msgspec.Struct, rename="camel"):
        address: str
        subaccount_number: int
        position_id: str
        market: str
        side: str
        status: str
        size: Decimal
        max_size: Decimal
        net_funding: Decimal
        entry_price: Decimal
        sum_open: Decimal
        sum_close: Decimal
        realized_pnl: Decimal
        unrealized_pnl: Decimal
        exit_price: Optional[Decimal] = None

    class AccountUpdate(msgspec.Struct, rename="camel"):
        block_height: Optional[int] = None
        orders: List[Order] = []
        fills: List[Fill] = []
        perpetual_positions: List[Position] = []

    class BookUpdate(msgspec.Struct):
        bids: List[Tuple[Decimal, Decimal]] = []
        asks: List[Tuple[Decimal, Decimal]] = []

    def frames(payload: Any) -> Any:  # annotations evaluated eagerly: msgspec reads them
        class Subscribed(Base, tag="subscribed"):
            connection_id: str = msgspec.field(name="connection_id")
            message_id: int = msgspec.field(name="message_id")
            channel: str = ""
            id: Optional[str] = None
            contents: Any = None

        class ChannelData(Base, tag="channel_data"):
            connection_id: str = msgspec.field(name="connection_id")
            message_id: int = msgspec.field(name="message_id")
            channel: str = ""
            version: str = ""
            contents: payload = None  # type: ignore[valid-type]
            id: Optional[str] = None

        # strict=False: heights and ids come as strings ("18794557") for int fields
        decoder = msgspec.json.Decoder(Union[Connected, Subscribed, ChannelData], strict=False)
        return decoder, ChannelData

    return frames(BookUpdate), frames(AccountUpdate)


def run_reference(port: int, n: int, sub: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    import websockets

    book, account = _reference_types()
    decoder, data_type = book if sub["channel"] == "v4_orderbook" else account
    probe = Probe(n)

    def on_message(msg: Any) -> None:  # the user's callback, on the loop
        probe.hit(msg.connection_id)

    async def main() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}", max_size=None, compression=None
        ) as ws:
            await ws.send(json.dumps(sub))
            while probe.count < n:
                msg = decoder.decode(await ws.recv(decode=False))
                if type(msg) is data_type:
                    on_message(msg)

    asyncio.run(asyncio.wait_for(main(), timeout))
    return probe.result()


RUNNERS: Dict[str, Callable[[int, int, Dict[str, Any], float], Dict[str, Any]]] = {
    "sdk": run_sdk,
    "reference": run_reference,
    "bare": run_bare,
}
