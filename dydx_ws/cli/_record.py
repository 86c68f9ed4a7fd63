"""``dydx-ws record --out FILE CHANNEL [ID...]``: store the raw frames of a live feed.

The recording is JSON Lines (gzip when FILE ends in ``.gz``): a header, then one line per frame
with its receive time (format: :mod:`dydx_ws.replay`); ``dydx-ws replay FILE`` or
:func:`dydx_ws.replay.replay` plays it back. Frames come from the client's raw-frame tap, so a
recording goes on across reconnects.
"""

from __future__ import annotations

import argparse
import os
import time

from ..errors import DydxConnectionError, SubscriptionError
from ..replay import RecordedFrame, record
from . import _common as common


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
    common.add_channel_arguments(parser)
    common.add_network_options(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    keys = common.parse_channel(args.channel, args.ids)
    network = common.resolve_network(args.network)
    out = common.Output()
    progress = _Progress(out)
    try:
        record(
            network.ws_url,
            keys,
            args.out,
            duration=args.duration,
            count=args.count,
            connect_timeout=args.connect_timeout,
            on_frame=progress,
            on_progress=out.error,
        )
    except OSError as exc:
        raise common.CliError(f"cannot write {args.out}: {exc}", common.EXIT_USAGE) from None
    except DydxConnectionError as exc:  # the file was removed
        raise common.CliError(str(exc), common.EXIT_UNREACHABLE) from None
    except SubscriptionError as exc:  # like watch and book: the server's text, exit 4
        progress.done(args.out)
        raise common.CliError(f"refused by the server: {exc}", common.EXIT_SUBSCRIPTION) from None
    except KeyboardInterrupt:  # the file is complete and closed: say what it holds
        progress.done(args.out)
        raise
    progress.done(args.out)
    return common.EXIT_OK


class _Progress:
    """Counts the frames written (on the client's I/O thread) and reports on stderr at the first
    frame, then at most once every ``INTERVAL`` seconds."""

    INTERVAL = 2.0

    def __init__(self, out: common.Output) -> None:
        self.out = out
        self.frames = 0
        self._next = 0.0

    def __call__(self, _frame: RecordedFrame) -> None:
        self.frames += 1
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.INTERVAL
            self.out.error(f"... {self.frames} frame(s)")

    def done(self, path: str) -> None:
        if os.path.exists(path):  # not when interrupted before the connection was made
            self.out.error(f"recorded {self.frames} frame(s) to {path}")
