"""The connection pool's cost per message: 900 subscriptions over 10 connections vs over one.

Run: ``python bench/pool.py`` (``--quick`` for a short run; ``--rounds N``; ``--messages N``;
``--markets N``). 300 markets x 3 channels (``v4_trades``, ``v4_orderbook``, ``v4_candles``
1MIN) = 900 subscriptions, through ``DydxWebSocketClient`` with its defaults in two variants:

- ``pool``: the default limits (32 per market channel): 10 connections, 10 I/O threads;
- ``one``: ``subscription_limits`` raised to 900 per channel: every subscription on one
  connection (one I/O thread).

A flood server in its own process (raw RFC 6455 over loopback, bench/_wire.py's framing) answers
each subscribe with a small ``subscribed`` snapshot. Once the client has every snapshot (and its
RSS is read) and the server has pre-encoded every connection's flood, each connection gets its
own subscriptions' ``channel_data`` frames, interleaved, in one ``sendall``: the same total per
round split evenly over the 900 subscriptions, so both variants deliver the same messages.

Per run (a fresh client process each time, so its CPU time and RSS are its own):

- msg/s: updates counted in the callbacks, from the first to the last one delivered;
- CPU/msg: process CPU time (every thread, user + system) over that span / updates;
- RSS/sub: (RSS with every snapshot in - RSS before the client was made) / subscriptions;
- of it sys, switches: the system CPU time and the context switches (voluntary and not) of the
  process over that span, per message: where the pool's extra cost shows (bench/README.md);
- cores: CPU time / wall time over that span (about 1.0: the client is bound by the GIL, not
  waiting for the server).

This 2-core machine is shared and noisy: the variants alternate (pool, one, one, pool, ...) over
``--rounds`` rounds (default 7) and medians are compared. Target (issue 14): the pool costs no
more than 10% CPU per message over one connection. To see what the extra cost depends on:
``--pool-limit N`` changes the pool's number of connections; ``--workers``, ``--cpu-affinity``,
``--pin`` (the whole process on these CPUs) and ``--switch-interval`` (``sys.setswitchinterval``)
apply to both variants alike.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _wire import HELLO, _handshake, frame

CHANNELS = ("v4_trades", "v4_orderbook", "v4_candles")
RESOLUTION = "1MIN"
VARIANTS = ("pool", "one")
TARGET = 1.10  # the pool's CPU per message at most 10% over one connection's
TIMEOUT = 300.0
Sub = Tuple[str, str]  # (channel, wire id)


# -- frames -------------------------------------------------------------------------------------
def _text(body: Dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _candle(ticker: str, close: str) -> Dict[str, Any]:
    return {
        "startedAt": "2026-12-02T10:00:00.000Z",
        "ticker": ticker,
        "resolution": RESOLUTION,
        "low": "99.5",
        "high": "100.5",
        "open": "100",
        "close": close,
        "baseTokenVolume": "12.5",
        "usdVolume": "1250.25",
        "trades": 9,
        "startingOpenInterest": "501.7424",
        "orderbookMidPriceOpen": "100.05",
        "orderbookMidPriceClose": "100.05",
    }


def _trade(tid: str) -> Dict[str, Any]:
    return {
        "id": tid,
        "side": "BUY",
        "size": "0.024",
        "price": "100.1",
        "type": "LIMIT",
        "createdAt": "2026-12-02T10:00:01.119Z",
        "createdAtHeight": "45487245",
    }


def snapshot(sub: Sub, message_id: int) -> bytes:
    """The ``subscribed`` frame of ``sub``: a few book levels, one trade, one candle."""
    channel, sid = sub
    if channel == "v4_orderbook":
        contents: Dict[str, Any] = {
            "bids": [{"price": f"{99 - k}", "size": "1.5"} for k in range(5)],
            "asks": [{"price": f"{101 + k}", "size": "1.5"} for k in range(5)],
        }
    elif channel == "v4_trades":
        contents = {"trades": [_trade("0")]}
    else:
        contents = {"candles": [_candle(sid.split("/")[0], "100")]}
    head = {
        "type": "subscribed",
        "connection_id": "bench",
        "message_id": message_id,
        "channel": channel,
        "id": sid,
        "contents": contents,
    }
    return frame(_text(head).encode())


class Updates:
    """``channel_data`` frames of one subscription (``update(i, message_id)``): a book level's
    size, a trade's id or a candle's close changes with ``i``."""

    def __init__(self, sub: Sub) -> None:
        channel, sid = sub
        contents: Dict[str, Any]
        if channel == "v4_orderbook":  # one bid level below the asks; sizes vary
            contents = {"bids": [["99.5", "MARKER"]]}
        elif channel == "v4_trades":
            contents = {"trades": [_trade("MARKER")]}
        else:
            contents = _candle(sid.split("/")[0], "MARKER")
        body = {
            "type": "channel_data",
            "connection_id": "bench",
            "message_id": 424242424242,
            "id": sid,
            "channel": channel,
            "version": "1.0.0",
            "contents": contents,
        }
        text = _text(body).replace("%", "%%").replace("424242424242", "%d")
        self._template = text.replace("MARKER", "%s").encode()
        self._channel = channel

    def update(self, i: int, message_id: int) -> bytes:
        if self._channel == "v4_orderbook":
            value = b"%d.%d" % (1 + i % 5, i % 10)
        elif self._channel == "v4_trades":
            value = b"%d" % (i + 1)
        else:
            value = b"100.%d" % (i % 10)
        return frame(self._template % (message_id, value))


def subscriptions(tickers: List[str]) -> List[Sub]:
    return [(c, t if c != "v4_candles" else f"{t}/{RESOLUTION}") for c in CHANNELS for t in tickers]


# -- the flood server (its own process) -----------------------------------------------------------
class _Server:
    """Counts subscribes over every connection; when all ``expected`` are in, each connection
    pre-encodes its flood, and floods once ``go`` is set."""

    def __init__(self, expected: int, per_sub: int) -> None:
        self.expected = expected
        self.per_sub = per_sub
        self.lock = threading.Lock()
        self.received = 0
        self.connections = 0
        self.built = 0
        self.all_subscribed = threading.Event()
        self.all_built = threading.Event()
        self.go = threading.Event()

    def handle(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        except OSError:
            pass  # the client left early (it failed, or it stopped once it had counted)
        finally:
            conn.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _handshake(conn)
        conn.sendall(HELLO)
        subs = self._collect(conn)
        conn.settimeout(None)
        if subs:
            flood = self._encode(subs, len(subs) + 1)
            with self.lock:
                self.built += 1
                if self.built == self.connections:
                    self.all_built.set()
            self.go.wait()
            conn.sendall(flood)
        while conn.recv(65536):  # wait for the client to leave
            pass

    def _collect(self, conn: socket.socket) -> List[Sub]:
        """Answer subscribes with snapshots until every connection's are in."""
        subs: List[Sub] = []
        buf = b""
        conn.settimeout(0.05)
        while not self.all_subscribed.is_set():
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError("the client left while subscribing")
            texts, buf = _client_frames(buf + chunk)
            for text in texts:
                msg = json.loads(text)
                if msg.get("type") != "subscribe":
                    continue
                subs.append((msg["channel"], msg["id"]))
                conn.sendall(snapshot(subs[-1], len(subs)))  # message ids: 0 was connected
                with self.lock:
                    if len(subs) == 1:
                        self.connections += 1
                    self.received += 1
                    if self.received >= self.expected:
                        self.all_subscribed.set()
        return subs

    def _encode(self, subs: List[Sub], message_id: int) -> bytes:
        """The connection's whole flood: ``per_sub`` updates of each subscription, interleaved."""
        makers = [Updates(sub) for sub in subs]
        parts = []
        for i in range(self.per_sub):
            for work in makers:
                parts.append(work.update(i, message_id))
                message_id += 1
        return b"".join(parts)


def _client_frames(buf: bytes) -> Tuple[List[bytes], bytes]:
    """Complete masked client frames at the start of ``buf``: their payloads, and the rest."""
    out: List[bytes] = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < pos + 4 + n:
            break
        mask = buf[pos : pos + 4]
        data = buf[pos + 4 : pos + 4 + n]
        payload = bytes(b ^ mask[k % 4] for k, b in enumerate(data))
        if buf[0] & 0x0F == 1:
            out.append(payload)
        buf = buf[pos + 4 + n :]
    return out, buf


def _server_main(expected: int, per_sub: int, port_q: Any, built_q: Any, go: Any) -> None:
    server = _Server(expected, per_sub)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port_q.put(listener.getsockname()[1])
    threads: List[threading.Thread] = []

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            t = threading.Thread(target=server.handle, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    threading.Thread(target=accept, daemon=True).start()
    if not server.all_built.wait(TIMEOUT):
        return
    built_q.put(server.connections)
    go.wait(TIMEOUT)
    server.go.set()
    for t in list(threads):
        t.join(TIMEOUT)


# -- the client (a fresh process per run) ---------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Probe:
    """Counts snapshots and updates in the callbacks (several workers call it: ``next`` on an
    ``itertools.count`` is atomic); clock and CPU from the first update to the last."""

    def __init__(self, subs: int, total: int) -> None:
        self.subs = subs
        self.total = total
        self._snapshots = itertools.count(1)
        self._updates = itertools.count(1)
        self.snapshots_in = threading.Event()
        self.done = threading.Event()
        self.t0 = self.t1 = self.cpu0 = self.cpu1 = 0.0
        self.usage0: Any = None
        self.usage1: Any = None

    def on_message(self, msg: Any) -> None:
        if msg.is_snapshot:
            if next(self._snapshots) == self.subs:
                self.snapshots_in.set()
            return
        n = next(self._updates)
        if n == 1:
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()
            self.usage0 = resource.getrusage(resource.RUSAGE_SELF)
        elif n == self.total:
            self.t1, self.cpu1 = time.perf_counter(), time.process_time()
            self.usage1 = resource.getrusage(resource.RUSAGE_SELF)
            self.done.set()


def _warm_up(tickers: List[str]) -> None:
    """Decode one frame of each kind first, so lazy imports do not count as subscriptions."""
    from dydx_ws import decode_message

    for sub in subscriptions(tickers[:1]):
        decode_message(_payload(snapshot(sub, 1)))
        decode_message(_payload(Updates(sub).update(0, 2)))


def _payload(data: bytes) -> bytes:
    n = data[1] & 0x7F
    return data[2:] if n < 126 else data[4:] if n == 126 else data[10:]


def _client_main(
    variant: str, port: int, tickers: List[str], per_sub: int, tweaks: Dict[str, Any], q: Any
) -> None:
    try:
        _client_run(variant, port, tickers, per_sub, tweaks, q)
    except BaseException as exc:
        q.put(("error", f"{variant}: {type(exc).__name__}: {exc}"))


def _client_run(
    variant: str, port: int, tickers: List[str], per_sub: int, tweaks: Dict[str, Any], q: Any
) -> None:
    """One client run; ``tweaks`` (the same for both variants): ``switch_interval`` (seconds,
    ``sys.setswitchinterval``), ``pin`` (CPUs for the whole process), and client arguments."""
    from dydx_ws import DydxWebSocketClient

    tweaks = dict(tweaks)
    if tweaks.get("switch_interval") is not None:
        sys.setswitchinterval(tweaks["switch_interval"])
    if tweaks.get("pin") is not None:
        os.sched_setaffinity(0, tweaks["pin"])
    tweaks.pop("switch_interval", None)
    tweaks.pop("pin", None)
    pool_limit = tweaks.pop("pool_limit", None)

    _warm_up(tickers)
    subs = len(subscriptions(tickers))
    total = subs * per_sub
    gc.collect()
    rss0 = rss_mb()
    limits = dict.fromkeys(CHANNELS, subs if variant == "one" else pool_limit)
    if limits[CHANNELS[0]] is None:
        limits = None  # the client's own: 32 per market channel
    client = DydxWebSocketClient(
        url=f"ws://127.0.0.1:{port}",
        ping_interval=0,
        check_interval=None,
        idle_limits=None,
        subscription_limits=limits,
        **tweaks,
    )
    errors: List[str] = []
    client.on("error", lambda e: errors.append(str(getattr(e, "message", e))))
    probe = Probe(subs, total)
    client.subscribe_trades(tickers, probe.on_message)
    client.subscribe_orderbook(tickers, probe.on_message)
    client.subscribe_candles(tickers, RESOLUTION, probe.on_message)
    with client:
        if not probe.snapshots_in.wait(TIMEOUT):
            raise RuntimeError(f"snapshots did not all arrive ({errors[:3]})")
        gc.collect()
        rss1 = rss_mb()
        stats = client.stats()
        connections = len(stats["connections"])
        io_threads = sum(t.name.startswith("dydx-ws-io") for t in threading.enumerate())
        q.put(("ready", connections))
        if not probe.done.wait(TIMEOUT):
            raise RuntimeError(f"{total} updates did not all arrive ({errors[:3]})")
        stats = client.stats()
    drops = sum(s["drops"] for s in stats["subscriptions"].values())
    if errors or drops:
        raise RuntimeError(f"{drops} drops, {len(errors)} error events: {errors[:3]}")
    span = probe.t1 - probe.t0
    u0, u1 = probe.usage0, probe.usage1
    switches = (u1.ru_nvcsw + u1.ru_nivcsw) - (u0.ru_nvcsw + u0.ru_nivcsw)
    q.put(
        (
            "result",
            {
                "rate": (total - 1) / span,
                "cpu_us": (probe.cpu1 - probe.cpu0) / (total - 1) * 1e6,
                "cores": (probe.cpu1 - probe.cpu0) / span,
                "sys_us": (u1.ru_stime - u0.ru_stime) / (total - 1) * 1e6,
                "switches_k": switches / (total - 1) * 1000,
                "rss_kb": (rss1 - rss0) * 1024 / subs,
                "rss_mb": rss1 - rss0,
                "connections": connections,
                "io_threads": io_threads,
            },
        )
    )


# -- one run, rounds, report -------------------------------------------------------------------
def run_once(
    variant: str, tickers: List[str], per_sub: int, tweaks: Dict[str, Any]
) -> Dict[str, Any]:
    """A server process and a client process for ``variant``; the server floods once the
    client has every snapshot and every flood is encoded."""
    fork, spawn = mp.get_context("fork"), mp.get_context("spawn")
    port_q: Any = fork.Queue()
    built_q: Any = fork.Queue()
    go: Any = fork.Event()
    subs = len(subscriptions(tickers))
    server = fork.Process(
        target=_server_main, args=(subs, per_sub, port_q, built_q, go), daemon=True
    )
    server.start()
    port = int(port_q.get(timeout=10))
    q: Any = spawn.Queue()
    child = spawn.Process(target=_client_main, args=(variant, port, tickers, per_sub, tweaks, q))
    child.start()
    ok = False
    try:
        kind, value = q.get(timeout=TIMEOUT)
        if kind == "error":
            raise RuntimeError(value)
        served = built_q.get(timeout=TIMEOUT)
        if served != value:
            raise RuntimeError(f"{variant}: server saw {served} connections, client {value}")
        go.set()
        kind, result = q.get(timeout=TIMEOUT)
        if kind == "error":
            raise RuntimeError(result)
        ok = True
        return dict(result)
    finally:
        child.join(30)
        server.join(30 if ok else 0)
        for proc in (child, server):
            if proc.is_alive():
                proc.terminate()


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def report(results: Dict[str, List[Dict[str, Any]]]) -> None:
    med = {
        v: {k: statistics.median(r[k] for r in results[v]) for k in results[v][0]} for v in results
    }
    print(
        f"\n{'variant':8} {'connections':>11} {'I/O threads':>11} {'msg/s':>10} {'CPU/msg':>10} "
        f"{'of it sys':>10} {'cores':>5} {'switches':>12} {'RSS/sub':>10} {'RSS total':>10}"
    )
    for v in VARIANTS:
        m = med[v]
        print(
            f"{v:8} {m['connections']:11.0f} {m['io_threads']:11.0f} {m['rate']:10,.0f} "
            f"{m['cpu_us']:7.2f} us {m['sys_us']:7.2f} us {m['cores']:5.2f} "
            f"{m['switches_k']:6.1f}/1k msg "
            f"{m['rss_kb']:7.1f} KB {m['rss_mb']:7.1f} MB"
        )
    for v in VARIANTS:
        rates = [r["rate"] for r in results[v]]
        cpus = [r["cpu_us"] for r in results[v]]
        print(
            f"  {v}: rounds {min(rates):,.0f}-{max(rates):,.0f} msg/s, "
            f"{min(cpus):.2f}-{max(cpus):.2f} us/msg"
        )
    cpu = med["pool"]["cpu_us"] / med["one"]["cpu_us"]
    rate = med["pool"]["rate"] / med["one"]["rate"]
    per_round = [p["cpu_us"] / o["cpu_us"] for p, o in zip(results["pool"], results["one"])]
    print(
        f"pool cost per message vs one connection: CPU/msg {cpu:.2f}x, msg/s {rate:.2f}x "
        f"(per-round CPU/msg ratios {min(per_round):.2f}x-{max(per_round):.2f}x)"
    )
    verdict = "holds" if cpu <= TARGET else "does NOT hold"
    print(f"target CPU/msg <= {TARGET:.2f}x one connection's: {verdict} ({cpu:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer messages")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; --quick 2)")
    parser.add_argument("--messages", type=int, help="updates per run (default 180,000)")
    parser.add_argument("--markets", type=int, default=300, help="markets (x 3 channels)")
    parser.add_argument(
        "--pool-limit", type=int, help="the pool variant's subscriptions per channel (default 32)"
    )
    parser.add_argument("--workers", type=int, help="client workers (default: the client's, 4)")
    parser.add_argument(
        "--cpu-affinity", help="the client's cpu_affinity: 'auto' or CPU numbers such as 0,1"
    )
    parser.add_argument(
        "--pin", help="CPUs for the whole client process (os.sched_setaffinity), e.g. 0"
    )
    parser.add_argument(
        "--switch-interval", type=float, help="sys.setswitchinterval in the client (s)"
    )
    args = parser.parse_args()
    tweaks: Dict[str, Any] = {}
    if args.pool_limit is not None:
        tweaks["pool_limit"] = args.pool_limit
    if args.workers is not None:
        tweaks["workers"] = args.workers
    if args.cpu_affinity is not None:
        spec = args.cpu_affinity
        tweaks["cpu_affinity"] = spec if spec == "auto" else [int(c) for c in spec.split(",")]
    if args.pin is not None:
        tweaks["pin"] = {int(c) for c in args.pin.split(",")}
    if args.switch_interval is not None:
        tweaks["switch_interval"] = args.switch_interval
    rounds = args.rounds or (2 if args.quick else 7)
    from dydx_ws.emulator.tickers import market_tickers

    tickers = list(market_tickers(args.markets))
    subs = len(subscriptions(tickers))
    wanted = args.messages or (45_000 if args.quick else 180_000)
    per_sub = max(1, -(-wanted // subs))
    total = per_sub * subs
    print(
        f"{subs} subscriptions ({len(tickers)} markets x {len(CHANNELS)} channels), "
        f"{total:,} updates per run ({per_sub} each); {rounds} rounds, variants alternating, "
        f"medians; {os.cpu_count()} CPUs, {_load()}"
    )
    if tweaks:
        print(f"tweaks (both variants): {tweaks}")
    results: Dict[str, List[Dict[str, Any]]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            results[variant].append(run_once(variant, tickers, per_sub, tweaks))
    report(results)
    print(_load())


if __name__ == "__main__":
    main()
