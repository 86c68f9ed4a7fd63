"""``dydx-ws replay FILE [--speed X]``: play a recording through the client's decode → dispatch →
callback path and print its messages like ``watch`` (with a progress bar on a terminal)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, Optional

from ..client import DydxWebSocketClient
from ..protocol._messages import Message
from ..replay import ReplayResult, ReplaySource, offline_client, subscribe_topics
from . import _common as common
from . import _views as views


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a recording through the SDK (decode, local state, callbacks)",
        description=(
            "Feed the frames of FILE (from 'dydx-ws record') through a client, as live data "
            "would arrive, and print every message."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="recording (.jsonl or .jsonl.gz)")
    parser.add_argument(
        "--speed",
        type=common.non_negative_float,
        default=1.0,
        metavar="X",
        help="1 = recorded pace (default), 2 = twice as fast, 0 = as fast as possible",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    common.add_json_option(parser)
    common.add_bounds(parser)
    parser.set_defaults(func=run)


@common.command
def run(args: argparse.Namespace) -> int:
    try:
        source = ReplaySource(args.file, speed=args.speed)
        topics = source.topics()
    except (OSError, ValueError) as exc:
        raise common.CliError(f"cannot read {args.file}: {exc}", common.EXIT_USAGE) from None
    out = common.Output(json_mode=args.json)
    stop = threading.Event()
    shown = 0

    def on_message(msg: Message) -> None:  # the one worker thread
        nonlocal shown
        if stop.is_set():
            return
        shown += 1
        if not args.quiet:
            out.message(msg)
        if args.count is not None and shown >= args.count:
            stop.set()

    timer = threading.Timer(args.duration, stop.set) if args.duration is not None else None
    client = offline_client()
    try:
        subscribe_topics(client, topics, on_message)
        if timer is not None:
            timer.start()
        if views.use_rich(args.json) and sys.stderr.isatty():
            result = _play_with_bar(source, client, stop)
        else:
            result = source.play(client, stop=stop)
    except ValueError as exc:  # a malformed line further down the file
        raise common.CliError(f"cannot replay {args.file}: {exc}", common.EXIT_USAGE) from None
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
        client.stop()
    _summary(out, result, args.file)
    return common.EXIT_OK


def _play_with_bar(
    source: ReplaySource, client: DydxWebSocketClient, stop: threading.Event
) -> ReplayResult:
    """Play with a progress bar on stderr (the frames are counted first: one more read)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        total = len(source)
        task = bar.add_task("replaying", total=total)

        def progress(done: int, _total: Optional[int]) -> None:
            bar.update(task, completed=done)

        return source.play(client, progress=progress, stop=stop, total=total)


def _summary(out: common.Output, result: ReplayResult, path: str) -> None:
    """The summary goes to stderr (stdout holds the messages): text, or ``{"summary": ...}``."""
    data: Any = {
        "file": path,
        "frames": result.frames,
        "messages": result.messages,
        "per_channel": result.per_channel,
        "decode_errors": result.decode_errors,
        "recorded_seconds": round(result.recorded_span, 3),
        "elapsed_seconds": round(result.elapsed, 3),
        "interrupted": result.interrupted,
    }
    if out.json_mode:
        out.error(json.dumps({"summary": data}))
        return
    channels = ", ".join(f"{common.SHORT.get(k, k)} {v}" for k, v in result.per_channel.items())
    out.error(
        f"replayed {result.frames} frame(s), {result.messages} message(s) "
        f"({channels or 'none'}) spanning {result.recorded_span:.1f} s in {result.elapsed:.2f} s"
        + (f"; {result.decode_errors} frame(s) did not decode" if result.decode_errors else "")
    )
