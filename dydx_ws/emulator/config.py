"""Every tunable of the emulator in one frozen dataclass; defaults are the real server's values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

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
