"""``dydx-ws history DIR``: what a Parquet data set (``dydx-ws relay --parquet DIR``) holds."""

from __future__ import annotations

import argparse

from . import _common as common


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "history",
        help="print the tables, dates, files and rows of a Parquet data set",
        description="Print what the Parquet data set under DIR holds, table by table.",
    )
    parser.add_argument("root", metavar="DIR", help="root of the data set")
    common.add_json_option(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    try:
        from ..history import summary

        tables = summary(args.root)
    except ImportError as exc:
        raise common.CliError(
            f"{exc} (pip install 'dydx_ws[parquet]')", common.EXIT_USAGE
        ) from None
    except FileNotFoundError as exc:
        raise common.CliError(str(exc), common.EXIT_USAGE) from None
    out = common.Output(args.json)
    if args.json:
        out.obj(tables)
        return common.EXIT_OK
    if not tables:
        out.line(f"{args.root}: no tables")
    for table, info in tables.items():
        dates = info["dates"]
        span = f"{dates[0]} .. {dates[-1]}" if dates else "-"
        out.line(
            f"{table:24} {info['rows']:>10} rows {info['files']:>5} files "
            f"{info['bytes'] / 1e6:>8.2f} MB  {span}"
        )
    return common.EXIT_OK
