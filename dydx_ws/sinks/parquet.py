"""``ParquetSink``: every frame into a Hive-partitioned Apache Parquet data set.

Layout: ``<root>/channel=<table>/date=<YYYY-MM-DD>/part-<start ms>-<writer>-<n>.parquet`` (date:
UTC date of the receive time). One table per channel (rows flattened for research: one row per
trade, book level, candle, market entry, block, account record) plus ``frames``: every data frame
exactly as received, which :func:`dydx_ws.history.replay` feeds back through the client.
Schemas: :data:`SCHEMAS` (README "Data set schemas"); decimal values are kept as the wire's
exact strings (``dydx_ws.history.read`` converts them to floats unless ``numeric=False``).

Files are written through a ``pyarrow.parquet.ParquetWriter`` on a hidden temporary name
(``.part-….parquet.tmp``, ignored by Parquet readers) and renamed when complete, so a crash or
``kill -9`` leaves only complete files. A file is completed when it has been open for
``rotate_seconds``, holds ``rotate_rows`` rows or ``rotate_bytes`` of frame text, when the date
changes, and on ``stop()``. Requires the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..protocol._channels import (
    BLOCK_HEIGHT,
    CANDLES,
    MARKETS,
    ORDERBOOK,
    PARENT_SUBACCOUNTS,
    SUBACCOUNTS,
    TRADES,
)
from .base import Sink, SinkFrame

__all__ = ["SCHEMAS", "ParquetSink"]

log = logging.getLogger("dydx_ws.sinks.parquet")

Row = Dict[str, Any]
_S, _I, _B, _T = "string", "int64", "bool", "timestamp"
_COMMON = {
    "received_at": _T,
    "connection_id": _S,
    "message_id": _I,
    "id": _S,
    "is_snapshot": _B,
}
#: Column name -> type of every table ("timestamp": microseconds, UTC).
SCHEMAS: Dict[str, Dict[str, str]] = {
    "frames": {**_COMMON, "seq": _I, "channel": _S, "type": _S, "raw": _S},
    TRADES: {
        **_COMMON,
        "ticker": _S,
        "trade_id": _S,
        "side": _S,
        "price": _S,
        "size": _S,
        "trade_type": _S,
        "created_at": _S,
        "created_at_height": _I,
    },
    ORDERBOOK: {**_COMMON, "ticker": _S, "side": _S, "price": _S, "size": _S},
    CANDLES: {
        **_COMMON,
        "ticker": _S,
        "resolution": _S,
        "started_at": _S,
        "open": _S,
        "high": _S,
        "low": _S,
        "close": _S,
        "base_token_volume": _S,
        "usd_volume": _S,
        "trades": _I,
        "starting_open_interest": _S,
    },
    MARKETS: {
        **_COMMON,
        "ticker": _S,
        "kind": _S,  # market (snapshot) | trading (diff) | oracle_price
        "oracle_price": _S,
        "status": _S,
        "fields": _S,  # the entry as JSON
    },
    BLOCK_HEIGHT: {**_COMMON, "block_height": _I, "time": _S},
    SUBACCOUNTS: {
        **_COMMON,
        "record": _S,  # subaccount|order|fill|perpetual_position|asset_position|transfer|...
        "ticker": _S,
        "side": _S,
        "size": _S,
        "price": _S,
        "status": _S,
        "record_id": _S,
        "created_at_height": _I,
        "data": _S,  # the record as JSON
    },
}
SCHEMAS[PARENT_SUBACCOUNTS] = dict(SCHEMAS[SUBACCOUNTS])


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError("ParquetSink needs pyarrow: pip install 'dydx_ws[parquet]'") from None
    return pyarrow


def arrow_schema(table: str) -> Any:
    """The pyarrow schema of one table."""
    pa = _pyarrow()
    types = {
        _S: pa.string(),
        _I: pa.int64(),
        _B: pa.bool_(),
        _T: pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[kind]) for name, kind in SCHEMAS[table].items()])


class _File:
    """One open part file: a writer on a hidden temporary name, renamed on :meth:`complete`."""

    def __init__(self, sink: ParquetSink, table: str, date: str) -> None:
        pa = sink._pa
        self.table, self.date = table, date
        folder = os.path.join(sink.root, f"channel={table}", f"date={date}")
        os.makedirs(folder, exist_ok=True)
        sink._parts += 1
        name = f"part-{int(time.time() * 1000)}-{sink.writer_id}-{sink._parts}.parquet"
        self.path = os.path.join(folder, name)
        self.tmp = os.path.join(folder, f".{name}.tmp")
        self.schema = arrow_schema(table)
        self.writer = pa.parquet.ParquetWriter(self.tmp, self.schema, compression=sink.compression)
        self.opened = time.monotonic()
        self.rows = 0
        self.bytes = 0

    def write(self, rows: List[Row], pa: Any) -> None:
        columns = {name: [r.get(name) for r in rows] for name in self.schema.names}
        self.writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))
        self.rows += len(rows)

    def complete(self) -> str:
        self.writer.close()
        os.replace(self.tmp, self.path)
        return self.path


class ParquetSink(Sink):
    """Write every frame to a Parquet data set under ``root`` (see the module docs).

    ``rotate_seconds`` / ``rotate_rows`` / ``rotate_bytes``: when a part file is completed;
    ``compression``: Parquet codec (``"zstd"``); ``tables``: the tables to write (default: all
    of :data:`SCHEMAS`). Other options are :class:`~dydx_ws.sinks.Sink`'s.
    """

    name = "parquet"

    def __init__(
        self,
        root: str,
        *,
        rotate_seconds: float = 300.0,
        rotate_rows: int = 1_000_000,
        rotate_bytes: int = 256 * 1024 * 1024,
        compression: str = "zstd",
        tables: Optional[Iterable[str]] = None,
        **options: Any,
    ) -> None:
        options.setdefault("batch_size", 2000)
        options.setdefault("flush_interval", 1.0)
        super().__init__(**options)
        if rotate_seconds <= 0 or rotate_rows < 1 or rotate_bytes < 1:
            raise ValueError("rotate_seconds, rotate_rows and rotate_bytes must be > 0")
        self._pa = _pyarrow()
        self.root = os.fspath(root)
        self.rotate_seconds = rotate_seconds
        self.rotate_rows = rotate_rows
        self.rotate_bytes = rotate_bytes
        self.compression = compression
        self.tables = set(SCHEMAS if tables is None else tables)
        unknown = self.tables - set(SCHEMAS)
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)}; choose from {sorted(SCHEMAS)}")
        self.writer_id = os.urandom(4).hex()
        self._parts = 0
        self._seq = 0
        self._open: Dict[str, _File] = {}
        self.files_written: List[str] = []
        self.rows_written: Dict[str, int] = {}

    def write(self, batch: List[SinkFrame]) -> None:
        by_file: Dict[tuple, List[Row]] = {}  # type: ignore[type-arg]
        sizes: Dict[tuple, int] = {}  # type: ignore[type-arg]
        for frame in batch:
            if not frame.is_data or frame.obj is None:
                continue
            date = _date(frame.received_at)
            common = _common(frame)
            self._seq += 1
            tables = [("frames", [{**common, "seq": self._seq, "channel": frame.channel,
                                   "type": frame.type, "raw": frame.raw}])]  # fmt: skip
            flatten = _FLATTEN.get(frame.channel or "")
            if flatten is not None:
                tables.append((frame.channel or "", [{**common, **r} for r in flatten(frame.obj)]))
            for table, rows in tables:
                if table in self.tables and rows:
                    by_file.setdefault((table, date), []).extend(rows)
                    sizes[(table, date)] = sizes.get((table, date), 0) + len(frame.raw)
        for (table, date), rows in by_file.items():
            part = self._file(table, date)
            part.write(rows, self._pa)
            part.bytes += sizes[(table, date)]
            self.rows_written[table] = self.rows_written.get(table, 0) + len(rows)
        self._rotate()

    def _file(self, table: str, date: str) -> _File:
        part = self._open.get(table)
        if part is not None and part.date != date:
            self._complete(table)
            part = None
        if part is None:
            part = self._open[table] = _File(self, table, date)
        return part

    def _rotate(self, force: bool = False) -> None:
        now = time.monotonic()
        for table, part in list(self._open.items()):
            if (
                force
                or now - part.opened >= self.rotate_seconds
                or part.rows >= self.rotate_rows
                or part.bytes >= self.rotate_bytes
            ):
                self._complete(table)

    def _complete(self, table: str) -> None:
        part = self._open.pop(table)
        self.files_written.append(part.complete())

    def close(self) -> None:
        for table in list(self._open):
            try:
                self._complete(table)
            except Exception:
                log.exception("could not complete the %s part file", table)

    def sink_stats(self) -> Dict[str, Any]:
        return {
            "root": self.root,
            "files": len(self.files_written),
            "open_files": len(self._open),
            "rows": dict(self.rows_written),
        }


# -- flattening: one frame's contents -> rows of its channel's table ---------------------------
_DAYS: Dict[int, str] = {}


def _date(received_at: float) -> str:
    """The UTC date of ``received_at`` (cached per day: one per frame costs a datetime)."""
    day = int(received_at // 86400)
    text = _DAYS.get(day)
    if text is None:
        text = datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%d")
        _DAYS[day] = text
    return text


def _common(frame: SinkFrame) -> Row:
    msg = frame.message
    message_id = msg.message_id if msg is not None else (frame.obj or {}).get("message_id")
    return {
        "received_at": int(frame.received_at * 1_000_000),  # the timestamp column's microseconds
        "connection_id": frame.connection,
        "message_id": message_id if isinstance(message_id, int) else None,
        "id": frame.id,
        "is_snapshot": frame.type == "subscribed",
    }


def _contents(obj: Dict[str, Any]) -> List[Dict[str, Any]]:
    contents = obj.get("contents")
    items = contents if isinstance(contents, list) else [contents]
    return [c for c in items if isinstance(c, dict)]


def _str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _int(value: Any) -> Optional[int]:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _trades(obj: Dict[str, Any]) -> List[Row]:
    return [
        {
            "ticker": obj.get("id"),
            "trade_id": _str(t.get("id")),
            "side": _str(t.get("side")),
            "price": _str(t.get("price")),
            "size": _str(t.get("size")),
            "trade_type": _str(t.get("type")),
            "created_at": _str(t.get("createdAt")),
            "created_at_height": _int(t.get("createdAtHeight")),
        }
        for c in _contents(obj)
        for t in c.get("trades") or []
        if isinstance(t, dict)
    ]


def _orderbook(obj: Dict[str, Any]) -> List[Row]:
    rows: List[Row] = []
    for c in _contents(obj):
        for side, name in (("bids", "bid"), ("asks", "ask")):
            for level in c.get(side) or []:
                if isinstance(level, dict):
                    price, size = level.get("price"), level.get("size")
                elif isinstance(level, list) and len(level) >= 2:
                    price, size = level[0], level[1]
                else:
                    continue
                rows.append(
                    {
                        "ticker": obj.get("id"),
                        "side": name,
                        "price": _str(price),
                        "size": _str(size),
                    }
                )
    return rows


def _candles(obj: Dict[str, Any]) -> List[Row]:
    items: List[Dict[str, Any]] = []
    for c in _contents(obj):
        items += [x for x in c["candles"] if isinstance(x, dict)] if "candles" in c else [c]
    sid = str(obj.get("id") or "")
    return [
        {
            "ticker": x.get("ticker") or sid.split("/")[0],
            "resolution": x.get("resolution") or (sid.split("/")[1] if "/" in sid else None),
            "started_at": _str(x.get("startedAt")),
            "open": _str(x.get("open")),
            "high": _str(x.get("high")),
            "low": _str(x.get("low")),
            "close": _str(x.get("close")),
            "base_token_volume": _str(x.get("baseTokenVolume")),
            "usd_volume": _str(x.get("usdVolume")),
            "trades": _int(x.get("trades")),
            "starting_open_interest": _str(x.get("startingOpenInterest")),
        }
        for x in items
    ]


_MARKET_FIELDS = (("markets", "market"), ("trading", "trading"), ("oraclePrices", "oracle_price"))


def _markets(obj: Dict[str, Any]) -> List[Row]:
    rows: List[Row] = []
    for c in _contents(obj):
        for field, kind in _MARKET_FIELDS:
            entries = c.get(field)
            if not isinstance(entries, dict):
                continue
            for ticker, entry in entries.items():
                if not isinstance(entry, dict):
                    continue
                rows.append(
                    {
                        "ticker": ticker,
                        "kind": kind,
                        "oracle_price": _str(entry.get("oraclePrice")),
                        "status": _str(entry.get("status")),
                        "fields": json.dumps(entry, separators=(",", ":")),
                    }
                )
    return rows


def _block_height(obj: Dict[str, Any]) -> List[Row]:
    return [
        {
            "block_height": _int(c.get("blockHeight", c.get("height"))),
            "time": _str(c.get("time")),
        }
        for c in _contents(obj)
    ]


_ACCOUNT_LISTS = (
    ("orders", "order"),
    ("fills", "fill"),
    ("perpetualPositions", "perpetual_position"),
    ("assetPositions", "asset_position"),
    ("transfers", "transfer"),
    ("tradingReward", "trading_reward"),
)


def _account_row(record: str, data: Dict[str, Any]) -> Row:
    return {
        "record": record,
        "ticker": _str(data.get("ticker") or data.get("market") or data.get("symbol")),
        "side": _str(data.get("side")),
        "size": _str(data.get("size")),
        "price": _str(data.get("price") or data.get("entryPrice")),
        "status": _str(data.get("status")),
        "record_id": _str(data.get("id")),
        "created_at_height": _int(data.get("createdAtHeight")),
        "data": json.dumps(data, separators=(",", ":")),
    }


def _accounts(obj: Dict[str, Any]) -> List[Row]:
    rows: List[Row] = []
    for c in _contents(obj):
        sub = c.get("subaccount")
        if isinstance(sub, dict):
            children = sub.get("childSubaccounts")
            for account in children if isinstance(children, list) else [sub]:
                if not isinstance(account, dict):
                    continue
                rows.append(_account_row("subaccount", account))
                for field, record in (
                    ("openPerpetualPositions", "perpetual_position"),
                    ("assetPositions", "asset_position"),
                ):
                    items = account.get(field)
                    if isinstance(items, dict):
                        rows += [
                            _account_row(record, x) for x in items.values() if isinstance(x, dict)
                        ]
        for field, record in _ACCOUNT_LISTS:
            items = c.get(field)
            items = items if isinstance(items, list) else [items] if isinstance(items, dict) else []
            rows += [_account_row(record, x) for x in items if isinstance(x, dict)]
    return rows


_FLATTEN: Dict[str, Callable[[Dict[str, Any]], List[Row]]] = {
    TRADES: _trades,
    ORDERBOOK: _orderbook,
    CANDLES: _candles,
    MARKETS: _markets,
    BLOCK_HEIGHT: _block_height,
    SUBACCOUNTS: _accounts,
    PARENT_SUBACCOUNTS: _accounts,
}
