"""Read and replay a Parquet data set written by :class:`~dydx_ws.sinks.ParquetSink`.

- :func:`read`: one table (``"v4_trades"``, ``"v4_orderbook"``, ..., ``"frames"``) over a date
  range into a pandas DataFrame (``engine="polars"`` for polars), sorted by receive time; exact
  decimal strings become floats unless ``numeric=False``.
- :func:`frames`: the recorded raw frames, in arrival order, as
  :class:`~dydx_ws.replay.RecordedFrame`.
- :func:`replay`: those frames through the client's normal decode → dispatch → local state →
  callback path (:func:`dydx_ws.replay.replay`): books rebuilt from a data set equal the live
  ones.
- :func:`summary`: what a data set holds (tables, dates, files, rows).

Requires the ``parquet`` extra (pyarrow, pandas); polars only when asked for.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Union

from .replay import RecordedFrame, ReplayResult, Target
from .replay import replay as _replay
from .sinks.parquet import SCHEMAS, arrow_schema

__all__ = ["frames", "read", "replay", "summary"]

DateLike = Union[str, date, datetime, None]
_NUMERIC = {
    "price",
    "size",
    "open",
    "high",
    "low",
    "close",
    "base_token_volume",
    "usd_volume",
    "starting_open_interest",
    "oracle_price",
}


def _day(value: DateLike) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def _dataset(root: Union[str, os.PathLike[str]], table: str) -> Any:
    import pyarrow.dataset as ds

    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; choose from {', '.join(sorted(SCHEMAS))}")
    folder = os.path.join(os.fspath(root), f"channel={table}")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no {table} data under {os.fspath(root)!r}")
    partitioning = ds.partitioning(flavor="hive", schema=_date_schema())
    return ds.dataset(folder, schema=_with_date(table), format="parquet", partitioning=partitioning)


def _date_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("date", pa.string())])


def _with_date(table: str) -> Any:
    import pyarrow as pa

    return arrow_schema(table).append(pa.field("date", pa.string()))


def _table(
    root: Union[str, os.PathLike[str]],
    table: str,
    start: DateLike,
    end: DateLike,
    columns: Optional[List[str]],
) -> Any:
    import pyarrow.compute as pc

    dataset = _dataset(root, table)
    condition = None
    first, last = _day(start), _day(end)
    if first is not None:
        condition = pc.field("date") >= first
    if last is not None:
        upper = pc.field("date") <= last
        condition = upper if condition is None else condition & upper
    for bound, op in ((start, "ge"), (end, "le")):
        if isinstance(bound, datetime):
            at = pc.scalar(bound.astimezone(timezone.utc))
            test = pc.field("received_at") >= at if op == "ge" else pc.field("received_at") <= at
            condition = test if condition is None else condition & test
    wanted = None if columns is None else list(dict.fromkeys([*columns, "received_at"]))
    result = dataset.to_table(columns=wanted, filter=condition)
    keys = [("received_at", "ascending")]
    if "seq" in result.column_names:
        keys.append(("seq", "ascending"))
    return result.sort_by(keys)


def read(
    root: Union[str, os.PathLike[str]],
    table: str,
    start: DateLike = None,
    end: DateLike = None,
    *,
    columns: Optional[List[str]] = None,
    numeric: bool = True,
    engine: str = "pandas",
) -> Any:
    """Rows of ``table`` received between ``start`` and ``end`` (dates ``"2026-12-01"`` or
    :class:`date`: whole days, inclusive; :class:`datetime`: exact bounds), sorted by
    ``received_at``. ``engine``: ``"pandas"`` (a DataFrame) or ``"polars"``."""
    if engine not in ("pandas", "polars"):
        raise ValueError("engine must be 'pandas' or 'polars'")
    arrow = _table(root, table, start, end, columns)
    if engine == "polars":
        import polars as pl

        frame: Any = pl.from_arrow(arrow)
        if numeric:
            cast = [pl.col(c).cast(pl.Float64) for c in frame.columns if c in _NUMERIC]
            frame = frame.with_columns(cast) if cast else frame
        return frame
    df = arrow.to_pandas()
    if numeric:
        for column in _NUMERIC & set(df.columns):
            df[column] = df[column].astype("float64")
    return df


def frames(
    root: Union[str, os.PathLike[str]], start: DateLike = None, end: DateLike = None
) -> Iterator[RecordedFrame]:
    """The data frames of a data set, in the order they arrived."""
    table = _table(root, "frames", start, end, ["received_at", "seq", "raw"])
    at = table.column("received_at").cast("int64").to_pylist()  # microseconds
    raw = table.column("raw").to_pylist()
    for micros, text in zip(at, raw):
        yield RecordedFrame(micros / 1e6, text)


def replay(
    root: Union[str, os.PathLike[str]],
    target: Target,
    start: DateLike = None,
    end: DateLike = None,
    *,
    speed: Optional[float] = None,
    workers: int = 1,
) -> ReplayResult:
    """Replay a data set like a recording (:func:`dydx_ws.replay.replay`): ``target`` is an
    offline client you subscribed, a callback, or a mapping ``channel -> callback``."""
    return _replay(list(frames(root, start, end)), target, speed=speed, workers=workers)


def summary(root: Union[str, os.PathLike[str]]) -> Dict[str, Dict[str, Any]]:
    """Table -> ``{"dates": [...], "files": n, "rows": n, "bytes": n}`` for a data set."""
    import pyarrow.parquet as pq

    out: Dict[str, Dict[str, Any]] = {}
    base = os.fspath(root)
    if not os.path.isdir(base):
        raise FileNotFoundError(f"no data set at {base!r}")
    for entry in sorted(os.listdir(base)):
        if not entry.startswith("channel="):
            continue
        table = entry.split("=", 1)[1]
        info: Dict[str, Any] = {"dates": [], "files": 0, "rows": 0, "bytes": 0}
        for day in sorted(os.listdir(os.path.join(base, entry))):
            folder = os.path.join(base, entry, day)
            if not day.startswith("date=") or not os.path.isdir(folder):
                continue
            parts = [f for f in os.listdir(folder) if f.endswith(".parquet") and f[0] not in "._"]
            if parts:
                info["dates"].append(day.split("=", 1)[1])
            for name in parts:
                path = os.path.join(folder, name)
                info["files"] += 1
                info["rows"] += pq.ParquetFile(path).metadata.num_rows
                info["bytes"] += os.path.getsize(path)
        out[table] = info
    return out
