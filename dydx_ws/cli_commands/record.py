"""``dydx-ws record --out FILE CHANNEL [ID...]``: store the raw frames of a live feed.

The recording is JSON Lines (gzip when FILE ends in ``.gz``): a header, then one line per frame
with its receive time; ``dydx-ws replay FILE`` or :func:`dydx_ws.replay.replay` plays it back.
"""

from __future__ import annotations

import argparse
import threading

from ..errors import DydxConnectionError
from ..replay import RecordedFrame, Recorder, record
from . import common


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record the raw frames of a channel to a JSON Lines file",
        description=(
            "Record every frame of CHANNEL (for each ID) with its receive time to FILE "
            "(JSON Lines; gzip when FILE ends in .gz). Replay it with 'dydx-ws replay FILE'."
        ),
    )
    parser.add_argument("--out", "-o", required=True, metavar="FILE", help="output file")
    parser.add_argument("channel", metavar="CHANNEL", help="channel name or alias")
    parser.add_argument("ids", nargs="*", metavar="ID", help="ticker, TICKER/RES or ADDRESS/N")
    common.add_network_options(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    keys = common.parse_channel(args.channel, args.ids)
    network = common.resolve_network(args.network)
    out = common.Output()
    try:
        recorder = Recorder(args.out, url=network.ws_url, subscriptions=keys)
    except OSError as exc:
        raise common.CliError(f"cannot write {args.out}: {exc}", common.EXIT_USAGE) from None
    progress = _Progress(out)
    try:
        with recorder:
            record(
                network.ws_url,
                keys,
                recorder,
                duration=args.duration,
                count=args.count,
                connect_timeout=args.connect_timeout,
                on_frame=progress,
                stop=threading.Event(),
            )
    except DydxConnectionError as exc:
        raise common.CliError(str(exc), common.EXIT_UNREACHABLE) from None
    finally:
        out.error(f"recorded {recorder.frames} frame(s) to {args.out}")
    return common.EXIT_OK


class _Progress:
    def __init__(self, out: common.Output) -> None:
        self.out = out
        self.frames = 0

    def __call__(self, frame: RecordedFrame) -> None:
        self.frames += 1
        if self.frames % 500 == 0:
            self.out.error(f"... {self.frames} frame(s)")
