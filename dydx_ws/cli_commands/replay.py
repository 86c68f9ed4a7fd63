"""``dydx-ws replay FILE [--speed X]``: play a recording through the client's decode → dispatch →
callback path and print its messages like ``watch`` (with a progress bar on a terminal)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, Callable, Optional

from ..client import DydxWebSocketClient
from ..messages import Message
from ..replay import ReplayResult, ReplaySource, subscribe_topics
from . import common, views


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
        total = len(source)
    except (OSError, ValueError) as exc:
        raise common.CliError(f"cannot read {args.file}: {exc}", common.EXIT_USAGE) from None
    out = common.Output(json_mode=args.json)
    stop = threading.Event()
    printed = [0]

    def on_message(msg: Message) -> None:
        if stop.is_set():
            return
        printed[0] += 1
        if not args.quiet:
            emit(msg)
        if args.count is not None and printed[0] >= args.count:
            stop.set()

    emit: Callable[[Message], None] = out.message
    timer = threading.Timer(args.duration or 0.0, stop.set)
    timer.daemon = True
    if args.duration is not None:
        timer.start()
    client = DydxWebSocketClient(url="ws://replay.invalid/v4/ws", workers=1)
    try:
        subscribe_topics(client, topics, on_message)
        if views.use_rich(args.json) and sys.stderr.isatty():
            result = _play_with_bar(source, client, stop, total, out, args.quiet)
        else:
            result = source.play(client, stop=stop, total=total)
    except ValueError as exc:
        raise common.CliError(f"cannot replay {args.file}: {exc}", common.EXIT_USAGE) from None
    finally:
        timer.cancel()
        stop.set()
        client.stop()
    _summary(out, args.json, result, args.file)
    return common.EXIT_OK


def _play_with_bar(
    source: ReplaySource,
    client: DydxWebSocketClient,
    stop: threading.Event,
    total: int,
    out: common.Output,
    quiet: bool,
) -> ReplayResult:
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
        task = bar.add_task("replaying", total=total)

        def progress(done: int, _total: Optional[int]) -> None:
            bar.update(task, completed=done)

        return source.play(client, progress=progress, stop=stop, total=total)


def _summary(out: common.Output, json_mode: bool, result: ReplayResult, path: str) -> None:
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
    if json_mode:
        out.error(json.dumps({"summary": data}))
        return
    channels = ", ".join(f"{common.SHORT.get(k, k)} {v}" for k, v in result.per_channel.items())
    out.error(
        f"replayed {result.frames} frame(s), {result.messages} message(s) "
        f"({channels or 'none'}) spanning {result.recorded_span:.1f} s in {result.elapsed:.2f} s"
        + (f"; {result.decode_errors} frame(s) did not decode" if result.decode_errors else "")
    )
