"""Shared pieces of the ``dydx-ws`` sub-commands: options, exit codes, channel parsing, connecting,
bounded waiting and the output functions (the only place of the package that prints).

Exit codes (every command):

====  =====================================================================
0     success (for ``demo``: data arrived on every channel)
1     runtime failure (e.g. ``demo`` saw a channel without data)
2     bad arguments (argparse usage errors, invalid ticker/address/file)
3     the network could not be reached (no connection within the timeout)
4     the server refused a subscription
130   interrupted (Ctrl-C): threads stopped, files closed
====  =====================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Optional, TextIO

from ..client import DydxWebSocketClient
from ..engine._subscriptions import Key, Subscription
from ..errors import DydxConnectionError, DydxWsError, SubscriptionError
from ..network import Network
from ..protocol._channels import (
    BLOCK_HEIGHT,
    CANDLES,
    CHANNEL_TABLE,
    CHANNELS,
    ORDERBOOK,
    PARENT_SUBACCOUNTS,
    SUBACCOUNTS,
    Channel,
    find,
)
from ..protocol._messages import (
    BlockHeightMessage,
    CandlesMessage,
    MarketsMessage,
    Message,
    OrderbookMessage,
    SubaccountMessage,
    TradesMessage,
)
from ..protocol._validation import (
    validate_address,
    validate_resolution,
    validate_subaccount_number,
    validate_ticker,
)
from ..replay import connect_or_raise, subscribe_key, wait_until

__all__ = [
    "CHANNELS",
    "CHANNEL_ALIASES",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SUBSCRIPTION",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "SHORT",
    "CliError",
    "Every",
    "Output",
    "add_bounds",
    "add_channel_arguments",
    "add_json_option",
    "add_network_options",
    "channel_name",
    "command",
    "connect",
    "deadline_after",
    "format_message",
    "live_client",
    "message_json",
    "money",
    "non_negative_float",
    "parse_channel",
    "positive_float",
    "positive_int",
    "resolve_network",
    "run_until",
    "split_ids",
    "text_of",
    "wait_subscribed",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_SUBSCRIPTION = 4
EXIT_INTERRUPTED = 130

SHORT = {spec.name: spec.short for spec in CHANNEL_TABLE.values()}
CHANNEL_ALIASES: Dict[str, str] = {
    **{spec.short: spec.name for spec in CHANNEL_TABLE.values()},
    "book": ORDERBOOK,
    "subaccounts": SUBACCOUNTS,
    "parent_subaccount": PARENT_SUBACCOUNTS,
    "parent_subaccounts": PARENT_SUBACCOUNTS,
    "height": BLOCK_HEIGHT,
    "blocks": BLOCK_HEIGHT,
}
# Parts a command-line id may leave out: a candle resolution, a subaccount number.
_ID_DEFAULTS = {CANDLES: "1MIN", SUBACCOUNTS: "0", PARENT_SUBACCOUNTS: "0"}


class CliError(Exception):
    """A failure with a message for the user and an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# -- options ---------------------------------------------------------------------------------------
def add_channel_arguments(parser: argparse.ArgumentParser) -> None:
    """``CHANNEL [ID...]`` (``watch``, ``record``)."""
    parser.add_argument("channel", metavar="CHANNEL", help="channel name or alias")
    parser.add_argument(
        "ids",
        nargs="*",
        default=[],
        metavar="ID",
        help="TICKER, TICKER/RES or ADDRESS/N; several: repeated or comma-separated (A,B)",
    )


def add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network",
        default="mainnet",
        metavar="NAME|URL",
        help="mainnet (default), testnet, local, or a ws:// / wss:// URL",
    )
    parser.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="give up (exit 3) if not connected within S seconds (default 10)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line instead of text"
    )


def add_bounds(parser: argparse.ArgumentParser, *, count: bool = True) -> None:
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    if count:
        parser.add_argument(
            "--count",
            type=positive_int,
            default=None,
            metavar="N",
            help="stop after N messages",
        )


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def resolve_network(name: str) -> Network:
    try:
        return Network.from_name(name)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


# -- channels ----------------------------------------------------------------------------------
def split_ids(ids: List[str]) -> List[str]:
    """Ids given repeated and/or comma-separated (``A,B C``) -> one list, duplicates dropped;
    arguments that name none (``,``) are a usage error."""
    parts = [p.strip() for raw in ids for p in raw.split(",")]
    out = list(dict.fromkeys(p for p in parts if p))
    if ids and not out:
        raise CliError(f"an empty list of ids: {' '.join(ids)!r}", EXIT_USAGE)
    return out


def channel_name(channel: str) -> str:
    """A channel's wire name from its wire name or alias (any case); unknown: exit 2."""
    name = CHANNEL_ALIASES.get(channel.lower(), channel.lower())
    if name not in CHANNELS:
        known = ", ".join(CHANNELS)
        raise CliError(
            f"unknown channel {channel!r}: use one of {known} (or a short alias)", EXIT_USAGE
        )
    return name


def parse_channel(channel: str, ids: List[str]) -> List[Key]:
    """``watch``/``record`` arguments -> ``(channel, wire id)`` pairs, validated.

    ``trades|orderbook TICKER...``, ``candles TICKER[/RES]...`` (default 1MIN),
    ``subaccounts|parent ADDRESS[/N]...`` (default 0), ``markets``, ``block_height``; ids may
    be comma-separated (``BTC-USD,ETH-USD``).
    """
    ids = split_ids(ids)
    name = channel_name(channel)
    spec = CHANNEL_TABLE[name]
    try:
        if not spec.has_id:
            if ids:
                raise ValueError(f"{name} takes no id, got {' '.join(ids)!r}")
            return [(name, None)]
        if not ids:
            hint = f"{spec.id_format} (e.g. {spec.id_example})"
            raise ValueError(f"{name} needs at least one id: {hint}")
        return [(name, spec.build_id(_id_params(spec, raw))) for raw in ids]
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _id_params(spec: Channel, raw: str) -> Dict[str, Any]:
    """One command-line id of ``spec``'s channel -> its validated subscribe parameters; a
    missing or empty resolution or subaccount number takes its default (1MIN, 0)."""
    default = _ID_DEFAULTS.get(spec.name)
    if default is not None and "/" not in raw:
        raw = f"{raw}/{default}"
    elif default is not None and raw.endswith("/"):
        raw += default
    out: Dict[str, Any] = {}
    for part, value in spec.parse_id(raw).items():
        if part == "ticker":
            out[part] = validate_ticker(value)
        elif part == "resolution":
            out[part] = validate_resolution(value)
        elif part == "address":
            out[part] = validate_address(value)
        else:
            parent = spec.name == PARENT_SUBACCOUNTS
            out[part] = validate_subaccount_number(value, parent=parent)
    return out


# -- connecting and waiting -----------------------------------------------------------------------
def connect(client: DydxWebSocketClient, timeout: float) -> None:
    """Start ``client`` and wait for its connection, or raise ``CliError`` (exit 3) naming the
    URL and the last connection error."""
    try:
        connect_or_raise(client, timeout, on_progress=_err)
    except DydxConnectionError as exc:
        raise CliError(str(exc), EXIT_UNREACHABLE) from None


def wait_subscribed(subs: List[Subscription], timeout: float) -> None:
    """Raise ``CliError`` (exit 4) with the server's text if it refused a subscription."""
    deadline = time.monotonic() + timeout
    for sub in subs:
        try:
            sub.wait_subscribed(max(0.0, deadline - time.monotonic()))
        except SubscriptionError as exc:
            raise CliError(f"refused by the server: {exc}", EXIT_SUBSCRIPTION) from None


@contextlib.contextmanager
def live_client(
    args: argparse.Namespace, keys: List[Key], callback: Callable[[Message], Any]
) -> Iterator[DydxWebSocketClient]:
    """A client on ``--network`` subscribed to ``keys`` (one callback for all), connected within
    ``--connect-timeout`` with every subscription confirmed (exit 3 / 4 otherwise); stopped, with
    every thread joined, when the block ends."""
    network = resolve_network(args.network)
    with DydxWebSocketClient(network=network, workers=1) as client:
        subs = [subscribe_key(client, channel, sid, callback) for channel, sid in keys]
        connect(client, args.connect_timeout)
        wait_subscribed(subs, args.connect_timeout)
        yield client


def deadline_after(duration: Optional[float]) -> Optional[float]:
    """The ``time.monotonic()`` deadline of ``--duration`` (None: no limit)."""
    return None if duration is None else time.monotonic() + duration


def run_until(
    done: threading.Event, duration: Optional[float], tick: Optional[Callable[[], None]] = None
) -> None:
    """Block until ``done`` is set or ``duration`` seconds have passed, calling ``tick()`` about
    four times a second (Ctrl-C raises ``KeyboardInterrupt`` here, in the main thread)."""
    wait_until(done, deadline_after(duration), tick=tick)


class Every:
    """``tick()`` calls ``fn()`` once every ``interval`` seconds (for :func:`run_until`)."""

    def __init__(self, interval: float, fn: Callable[[], None]) -> None:
        self.interval = interval
        self.fn = fn
        self.next = time.monotonic() + interval

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.interval
            self.fn()


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn ``CliError``/``DydxWsError``/Ctrl-C/broken pipes into a message and an exit code."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        name = getattr(args, "command", "") or ""
        try:
            return fn(args)
        except CliError as exc:
            _err(f"dydx-ws {name}: error: {exc}")
            return exc.code
        except KeyboardInterrupt:
            _err(f"dydx-ws {name}: interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _quiet_stdout()
            return EXIT_OK
        except DydxWsError as exc:
            _err(f"dydx-ws {name}: error: {exc}")
            return EXIT_ERROR

    return run


def _err(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _quiet_stdout() -> None:
    # stdout's reader went away (``| head``): point it at /dev/null so the exit flush is silent.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# -- output ------------------------------------------------------------------------------------
class Output:
    """Thread-safe line output (text or JSON Lines) for callbacks running on worker threads."""

    def __init__(self, json_mode: bool = False, stream: Optional[TextIO] = None) -> None:
        self.json_mode = json_mode
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = threading.Event()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def line(self, text: str) -> None:
        with self._lock:
            if self.broken.is_set():
                return
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except BrokenPipeError:
                self.broken.set()
                _quiet_stdout()

    def obj(self, obj: Any) -> None:
        self.line(json.dumps(obj, default=_json_default, separators=(",", ":")))

    def message(self, msg: Message) -> None:
        if self.json_mode:
            self.obj(message_json(msg))
        else:
            self.line(format_message(msg))

    def error(self, text: str) -> None:
        _err(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def message_json(msg: Message) -> Dict[str, Any]:
    """The message as a JSON-ready dict with snake_case keys throughout, as the Python attribute
    names (``to_dict`` gives the models' camelCase wire names; the envelope is snake_case), money
    as strings. Keys that are data (tickers, addresses) are kept as they are."""
    out: Dict[str, Any] = _snake_keys(msg.to_dict(encode_json=True))
    out["kind"] = type(msg).__name__
    return out


_CAMEL = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$")
_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            (_HUMP.sub(r"_\1", k).lower() if isinstance(k, str) and _CAMEL.match(k) else k): (
                _snake_keys(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3] if ts else "--:--:--.---"


def text_of(value: Any) -> str:
    """An enum's value (or any value) as text; ``-`` for None."""
    if value is None:
        return "-"
    return str(getattr(value, "value", value))


def money(value: Optional[Decimal]) -> str:
    return "-" if value is None else f"{value:,.2f}"


def format_message(msg: Message) -> str:
    """One human-readable line for a message."""
    head = f"{_t(msg.received_at)} {SHORT.get(msg.channel or '', msg.channel or msg.type):<12}"
    spec = find(msg.channel)
    sid = msg.id if msg.id and (spec is None or spec.has_id) else ""
    kind = "snapshot" if msg.is_snapshot else "update"
    body = ""
    if isinstance(msg, TradesMessage):
        parts = [f"{text_of(t.side)} {t.size} @ {t.price}" for t in msg.trades[:3]]
        more = f" (+{len(msg.trades) - 3} more)" if len(msg.trades) > 3 else ""
        body = f"{kind} {len(msg.trades)} trade(s): " + ", ".join(parts) + more
    elif isinstance(msg, OrderbookMessage):
        top = ""
        book = msg.book
        if book is not None:
            bid, ask = book.top()
            top = f"  best {bid.price if bid else '-'} / {ask.price if ask else '-'}"
        body = f"{kind} {len(msg.bids)} bid(s) {len(msg.asks)} ask(s){top}"
    elif isinstance(msg, CandlesMessage):
        if msg.candles:
            c = msg.candles[0]
            body = (
                f"{kind} {len(msg.candles)} candle(s); {c.started_at:%H:%M} "
                f"O {c.open} H {c.high} L {c.low} C {c.close} vol {c.base_token_volume} "
                f"trades {c.trades}"
            )
        else:
            body = f"{kind} no candles"
    elif isinstance(msg, MarketsMessage):
        if msg.is_snapshot:
            body = f"snapshot {len(msg.markets)} market(s)"
        else:
            prices = ", ".join(f"{p.ticker} {p.oracle_price}" for p in msg.oracle_prices[:4])
            body = f"update {len(msg.trading)} trading diff(s)"
            if msg.oracle_prices:
                body += f"; oracle {prices}"
    elif isinstance(msg, SubaccountMessage):
        bits: List[str] = []
        sub = msg.subaccount
        if sub is not None:
            bits.append(f"equity {money(sub.equity)} free {money(sub.free_collateral)}")
        for o in msg.orders[:3]:
            bits.append(
                f"order {text_of(o.side)} {o.size} {o.ticker} @ {o.price} {text_of(o.status)}"
            )
        for f in msg.fills[:3]:
            bits.append(f"fill {text_of(f.side)} {f.size} {f.market or f.ticker} @ {f.price}")
        for p in msg.perpetual_positions[:3]:
            bits.append(f"position {p.market} {text_of(p.side)} {p.size}")
        if msg.transfers:
            bits.append(f"{len(msg.transfers)} transfer(s)")
        if msg.block_height is not None:
            bits.append(f"height {msg.block_height}")
        body = f"{kind} " + ("; ".join(bits) if bits else "no changes")
    elif isinstance(msg, BlockHeightMessage):
        body = f"{kind} height {msg.height} at {msg.time:%H:%M:%S}"
    else:
        body = msg.type
    return f"{head} {sid + '  ' if sid else ''}{body}"
