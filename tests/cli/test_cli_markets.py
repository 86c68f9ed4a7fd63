"""``dydx-ws book`` and ``watch`` with several markets (``A,B``, ``A B``) or ``--all``: one table,
a row per market sorted by id, the connection pool as footer; as subprocesses against an
emulator listing 40 markets (more than one connection's 32 order books)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from dataclasses import dataclass
from typing import IO, Callable, Dict, Iterator, List

import pytest

from dydx_ws.emulator import IndexerEmulator
from tests.helpers.cli_runner import DYDX_WS, ROOT, cli_env, run_cli, run_in_pty

pytestmark = pytest.mark.timeout(180)

POOL = re.compile(r"^pool: (\d+) connections? \((\d+) connected\) · subscriptions (.*) · frames ")


@pytest.fixture(scope="module")
def emu40() -> Iterator[IndexerEmulator]:
    with IndexerEmulator(markets=40, seed=3, block_time=0.3) as e:
        yield e


@pytest.fixture(scope="module")
def tickers(emu40: IndexerEmulator) -> List[str]:
    return sorted(emu40.config.markets)


def last_table(stdout: str) -> List[str]:
    """The lines of the last table printed (tables are separated by a blank line)."""
    blocks = [b for b in stdout.split("\n\n") if b.strip()]
    assert blocks, stdout
    return blocks[-1].splitlines()


@dataclass
class Table:
    heading: str
    columns: List[str]
    rows: Dict[str, Dict[str, str]]  # market -> column -> cell
    order: List[str]  # the markets, as printed
    more: List[str]  # the "... N more" line, if any
    connections: int  # the pool footer's numbers
    connected: int
    subscriptions: str


def parse(table: List[str]) -> Table:
    """A printed table: heading, header, rows, maybe a "... N more" line, the pool footer."""
    heading, header, *rows, footer = table
    columns = header.split()
    more = [r for r in rows if r.startswith("... ")]
    cells = {}
    for row in rows:
        if row in more:
            continue
        values = row.split()
        assert len(values) == len(columns), row
        cells[values[0]] = dict(zip(columns, values))
    match = POOL.match(footer)
    assert match, footer
    return Table(
        heading=heading,
        columns=columns,
        rows=cells,
        order=[r.split()[0] for r in rows if r not in more],
        more=more,
        connections=int(match.group(1)),
        connected=int(match.group(2)),
        subscriptions=match.group(3),
    )


def test_book_all_shows_every_market_and_the_pool(
    emu40: IndexerEmulator, tickers: List[str]
) -> None:
    args = ["book", "--all", "--duration", "1.5", "--interval", "60", "--network", emu40.ws_url]
    r = run_cli(args)
    assert r.returncode == 0, r.stderr
    t = parse(last_table(r.stdout))
    assert t.heading == "orderbook, every market: 40 markets"
    assert t.columns == ["market", "bid", "ask", "spread", "levels", "state", "updates", "age"]
    assert t.order == tickers  # every market, sorted
    for row in t.rows.values():
        assert row["state"] == "live", row
        assert float(row["bid"]) < float(row["ask"]), row
        assert float(row["spread"]) == pytest.approx(float(row["ask"]) - float(row["bid"]))
        assert int(row["levels"]) > 0 and int(row["updates"]) >= 1
        assert row["age"].endswith(("s", "m"))
    assert t.connections >= 2 and t.connected == t.connections  # 40 > 32 a connection
    assert t.subscriptions == "markets 1, orderbook 40"  # ALL_MARKETS follows the markets


def test_book_all_json_and_rows(emu40: IndexerEmulator, tickers: List[str]) -> None:
    r = run_cli(
        ["book", "--all", "--json", "--rows", "5", "--duration", "1", "--interval", "60",
         "--network", emu40.ws_url]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    assert obj["channel"] == "v4_orderbook" and obj["total"] == 40
    assert [m["market"] for m in obj["markets"]] == tickers[:5]
    assert all(float(m["bid"]) < float(m["ask"]) for m in obj["markets"])
    pool = obj["pool"]
    assert pool["connections"] >= 2 and pool["connected"] == pool["connections"]
    assert pool["subscriptions"] == {"v4_markets": 1, "v4_orderbook": 40}

    r = run_cli(["book", "--all", "--rows", "3", "--duration", "1", "--network", emu40.ws_url])
    assert r.returncode == 0, r.stderr
    t = parse(last_table(r.stdout))
    assert t.heading == "orderbook, every market: 40 markets, 3 shown"
    assert t.order == tickers[:3] and t.more == ["... 37 more (--rows N shows more)"]


def test_book_tickers_comma_separated_and_repeated(emu40: IndexerEmulator) -> None:
    r = run_cli(
        ["book", "SOL-USD,BTC-USD", "ETH-USD", "--duration", "1", "--network", emu40.ws_url]
    )
    assert r.returncode == 0, r.stderr
    t = parse(last_table(r.stdout))
    assert t.heading == "orderbook, markets: 3 markets"
    assert t.order == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert (t.connections, t.subscriptions) == (1, "orderbook 3")


def test_book_one_ticker_is_still_a_ladder(emu40: IndexerEmulator) -> None:
    r = run_cli(["book", "ETH-USD,", "--duration", "1", "--depth", "2", "--network", emu40.ws_url])
    assert r.returncode == 0, r.stderr
    assert "ETH-USD  mid" in r.stdout and "pool:" not in r.stdout


def test_watch_two_tickers_prints_both(emu40: IndexerEmulator) -> None:
    r = run_cli(
        ["watch", "trades", "BTC-USD,ETH-USD", "--duration", "1", "--network", emu40.ws_url]
    )
    assert r.returncode == 0, r.stderr
    snapshots = [line for line in r.stdout.splitlines() if "snapshot" in line]
    assert sorted(line.split()[2] for line in snapshots) == ["BTC-USD", "ETH-USD"]


def test_watch_candles_take_the_resolution_option(emu40: IndexerEmulator) -> None:
    r = run_cli(
        ["watch", "candles", "BTC-USD,ETH-USD/", "SOL-USD/1HOUR", "--resolution", "5MINS",
         "--json", "--duration", "1", "--network", emu40.ws_url]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    snapshots = [json.loads(x) for x in r.stdout.splitlines() if '"is_snapshot":true' in x]
    assert sorted(m["id"] for m in snapshots) == ["BTC-USD/5MINS", "ETH-USD/5MINS", "SOL-USD/1HOUR"]


def test_watch_table_of_trades(emu40: IndexerEmulator) -> None:
    r = run_cli(
        ["watch", "trades", "BTC-USD,ETH-USD", "--table", "--duration", "1.5", "--interval", "60",
         "--network", emu40.ws_url]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    t = parse(last_table(r.stdout))
    assert t.heading == "trades, markets: 2 markets"
    assert t.columns == ["market", "price", "size", "side", "trades", "state", "messages", "age"]
    assert t.order == ["BTC-USD", "ETH-USD"]
    for row in t.rows.values():
        assert float(row["price"]) > 0 and float(row["size"]) > 0  # the snapshot's newest
        assert row["side"] in ("BUY", "SELL") and row["state"] == "live"
        assert int(row["messages"]) >= 1
    assert (t.connections, t.subscriptions) == (1, "trades 2")


def test_watch_candles_all_with_a_resolution(emu40: IndexerEmulator, tickers: List[str]) -> None:
    r = run_cli(
        ["watch", "candles", "--all", "--resolution", "5MINS", "--json", "--duration", "1",
         "--interval", "60", "--network", emu40.ws_url]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    assert obj["channel"] == "v4_candles" and obj["total"] == 40
    assert [m["market"] for m in obj["markets"]] == [f"{t}/5MINS" for t in tickers]
    assert all(m["close"] is not None and m["state"] == "live" for m in obj["markets"])
    assert obj["pool"]["subscriptions"] == {"v4_candles": 40, "v4_markets": 1}
    assert obj["pool"]["connections"] >= 2


def test_book_all_on_a_terminal_fits_its_height(emu40: IndexerEmulator) -> None:
    rc, text = run_in_pty(
        ["book", "--all", "--duration", "1", "--network", emu40.ws_url], lines=20, columns=120
    )
    assert rc == 0, text[-2000:]
    assert "every market: 40 markets, 12 shown" in text  # 20 lines: 12 rows and 8 others
    assert "... 28 more" in text and "pool: 2 connections (2 connected)" in text


def test_a_refused_ticker_is_exit_4(emu40: IndexerEmulator) -> None:
    r = run_cli(["book", "BTC-USD,NOPE-USD", "--duration", "5", "--network", emu40.ws_url])
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "refused" in r.stderr and "NOPE-USD" in r.stderr


def next_table(stream: IO[str], until: Callable[[Table], bool]) -> Table:
    """Read printed tables from ``stream`` until one satisfies ``until``."""
    while True:
        lines: List[str] = []
        while True:
            line = stream.readline()
            assert line, "the command ended"
            if not line.strip():
                break
            lines.append(line.rstrip("\n"))
        table = parse(lines)
        if until(table):
            return table


def test_book_all_follows_listings_and_delistings() -> None:
    with IndexerEmulator(markets=["BTC-USD", "ETH-USD"], seed=3, block_time=0.3) as emu:
        proc = subprocess.Popen(
            [*DYDX_WS, "book", "--all", "--interval", "0.2", "--network", emu.ws_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=str(ROOT),
        )
        try:
            assert proc.stdout is not None
            first = next_table(proc.stdout, lambda t: True)
            assert first.order == ["BTC-USD", "ETH-USD"]
            emu.list_market("SOL-USD")
            t = next_table(proc.stdout, lambda t: "SOL-USD" in t.order)
            assert t.order == ["BTC-USD", "ETH-USD", "SOL-USD"]
            live = next_table(proc.stdout, lambda t: t.rows["SOL-USD"]["state"] == "live")
            assert live.subscriptions == "markets 1, orderbook 3"
            emu.delist_market("ETH-USD")
            t = next_table(proc.stdout, lambda t: "ETH-USD" not in t.order)
            assert t.order == ["BTC-USD", "SOL-USD"]
            assert t.heading == "orderbook, every market: 2 markets"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["book"], "give a TICKER (several: A,B or A B) or --all"),
        (["book", ","], "an empty list of ids"),
        (["book", "--all", "BTC-USD"], "give tickers or --all, not both"),
        (["book", "BTC-USD,btc-usd"], "btc-usd"),
        (["book", "--all", "--rows", "0"], "expected an integer >= 1"),
        (["book", "--all", "--everything"], "unrecognized arguments: --everything"),
        (["watch", "trades", ", ,"], "an empty list of ids"),
        (["watch", "trades", "BTC-USD", "--all"], "give tickers or --all, not both"),
        (["watch", "markets", "--all"], "--all is for the market channels"),
        (["watch", "block_height", "--table"], "--table is for the market channels"),
        (["watch", "trades", "BTC-USD", "--resolution", "1MIN"], "--resolution is for candles"),
        (["watch", "candles", "BTC-USD", "--resolution", "2MIN"], "invalid candle resolution"),
    ],
)
def test_bad_market_arguments_exit_2(args: List[str], text: str) -> None:
    r = run_cli([*args, "--network", "ws://127.0.0.1:9/v4/ws", "--connect-timeout", "1"])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert text in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
