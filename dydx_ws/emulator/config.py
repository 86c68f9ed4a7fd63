"""Every tunable of the emulator in one frozen dataclass; defaults are the real server's values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from .tickers import resolve_markets

CHANNELS = (
    "v4_orderbook",
    "v4_subaccounts",
    "v4_trades",
    "v4_markets",
    "v4_candles",
    "v4_parent_subaccounts",
    "v4_block_height",
)

DEFAULT_CHANNEL_LIMITS: Dict[str, int] = {
    "v4_subaccounts": 256,
    "v4_parent_subaccounts": 256,
    "v4_candles": 32,
    "v4_markets": 32,
    "v4_orderbook": 32,
    "v4_trades": 32,
    "v4_block_height": 1,
}

# comlink's route limits since 2025 (requests per 10 s per IP)
DEFAULT_ROUTE_LIMITS: Dict[str, Tuple[int, float]] = {
    "/v4/orders": (100, 10.0),
    "/v4/fills": (100, 10.0),
}

VERSIONS: Dict[str, str] = {
    "v4_orderbook": "1.0.0",
    "v4_subaccounts": "3.0.0",
    "v4_parent_subaccounts": "3.0.0",
    "v4_trades": "2.1.0",
    "v4_markets": "1.0.0",
    "v4_candles": "1.0.0",
    "v4_block_height": "1.0.0",
}


@dataclass(frozen=True)
class EmulatorConfig:
    """Knobs of :class:`~dydx_ws.emulator.IndexerEmulator` (times in seconds)."""

    # a sequence of tickers, or a count (``300``: a mainnet-sized list, see tickers.py)
    markets: Tuple[str, ...] = ("BTC-USD", "ETH-USD")
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    rest_port: int = 0
    # market simulation
    block_time: float = 1.0
    start_time: Optional[float] = None
    warmup_blocks: int = 200
    book_levels: int = 60
    max_book_levels: int = 90
    activity: int = 8
    # at most this many markets trade in one block: with more, the first 8 trade in every block
    # and the others take turns at a quarter of the activity, so a block's cost stays bounded
    markets_per_block: int = 32
    trading_interval: float = 30.0
    crossed_levels: bool = False
    silent_deletions: bool = False
    fault_probability: float = 0.05
    stale_level_seconds: float = 10.0
    # socks
    heartbeat_interval: float = 30.0
    heartbeat_timeout: float = 10.0
    batch_interval: float = 0.25
    snapshot_delay: float = 0.0
    # seconds after list_market() during which socks still refuses subscribes to the new ticker
    # (the real server validates against a market cache refreshed every 5 min: up to 300 s)
    listing_delay: float = 0.0
    # socks answers a subscribe only after its initial REST fetch: the replies are asynchronous,
    # so a burst that trips the rate limit closes the socket before any of them is sent
    fetch_latency: float = 0.02
    rate_limit_enabled: bool = True
    subscribe_points: int = 2
    subscribe_window: float = 1.0
    invalid_points: int = 2
    invalid_window: float = 1.0
    channel_limits: Dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CHANNEL_LIMITS))
    close_timeout: float = 2.0
    # after a heartbeat-timeout close (1011) TCP stays open until the client answers the close
    # frame, for at most this long (the real server: up to 30 s)
    heartbeat_close_timeout: float = 30.0
    # comlink
    api_limit: int = 1000
    orderbook_levels_limit: int = 100
    rest_rate_limit: Optional[Tuple[int, float]] = None
    candles_rate_limit: Optional[Tuple[int, float]] = None
    # per-route limits per client IP, on top of the global one: path prefix -> (points, seconds)
    route_rate_limits: Dict[str, Tuple[int, float]] = field(
        default_factory=lambda: dict(DEFAULT_ROUTE_LIMITS)
    )

    def __post_init__(self) -> None:
        """Bad settings raise ``ValueError`` here, not as a dead emulator thread later.

        A market count becomes its ticker list, and a partial ``channel_limits`` keeps the
        defaults of the channels it leaves out.
        """
        markets = resolve_markets(self.markets)
        if not markets or not all(isinstance(m, str) and m for m in markets):
            raise ValueError("markets must be a non-empty sequence of tickers")
        object.__setattr__(self, "markets", markets)
        if not isinstance(self.channel_limits, Mapping):
            raise ValueError(
                f"channel_limits must be a dict of channel -> limit, got {self.channel_limits!r}"
            )
        positive = ("block_time", "heartbeat_interval", "heartbeat_timeout", "batch_interval")
        for name in positive:
            _number(name, getattr(self, name), strict=True)
        for name in (
            "snapshot_delay",
            "listing_delay",
            "fetch_latency",
            "close_timeout",
            "heartbeat_close_timeout",
            "subscribe_window",
            "invalid_window",
        ):
            _number(name, getattr(self, name), strict=False)
        for name in (
            "subscribe_points",
            "invalid_points",
            "api_limit",
            "orderbook_levels_limit",
            "markets_per_block",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for channel, limit in self.channel_limits.items():
            if channel not in CHANNELS:
                raise ValueError(
                    f"channel_limits: unknown channel {channel!r}; one of {', '.join(CHANNELS)}"
                )
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(
                    f"channel_limits[{channel!r}] must be an integer >= 1, got {limit!r}"
                )
        object.__setattr__(
            self, "channel_limits", {**DEFAULT_CHANNEL_LIMITS, **self.channel_limits}
        )
        limits = dict(self.route_rate_limits)
        for name in ("rest_rate_limit", "candles_rate_limit"):
            value = getattr(self, name)
            if value is not None:
                limits[name] = value
        for route, pair in limits.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"rate limit {route!r} must be (points, seconds), got {pair!r}")
            points, seconds = pair
            if isinstance(points, bool) or not isinstance(points, int) or points < 1:
                raise ValueError(f"rate limit {route!r}: points must be an integer >= 1")
            _number(f"rate limit {route!r} seconds", seconds, strict=True)


def _number(name: str, value: object, *, strict: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = number == number and number < 1e9 and (number > 0 if strict else number >= 0)
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")
