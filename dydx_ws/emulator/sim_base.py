"""State shared by the simulator's parts: what a block publishes, each market's state, the
changes a block collects per subaccount, and the base class holding the simulator's fields.

The parts (:mod:`.crowd`, :mod:`.demo_trading`, :mod:`.views`) are mixins of
:class:`~dydx_ws.emulator.simulator.MarketSimulator` over :class:`SimulatorBase`; they share one
random generator, so the order of its calls (and the seeded output) is that of one class.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple

from .account import DemoOrder, Subaccount
from .book import LevelChange, OrderBook
from .candles import CandleSeries
from .config import EmulatorConfig
from .markets import MarketSpec

START_HEIGHT = 12_000_000
WARMUP_SPACING = 3.0
MAX_TRADES = 5000
TRADE_BUDGET = 200_000  # trades kept over all markets: many markets keep fewer each


def trade_history_cap(markets: int) -> int:
    """Trades kept per market when there are ``markets``: 5000, down to 100 for thousands."""
    return min(MAX_TRADES, max(100, TRADE_BUDGET // max(1, markets)))


DEMO_SUBACCOUNTS = (0, 128)
ACTIVE = "ACTIVE"
# the PerpetualMarketStatus values other than ACTIVE; the emulator stops all trading in each
INACTIVE_STATUSES = ("PAUSED", "CANCEL_ONLY", "POST_ONLY", "INITIALIZING", "FINAL_SETTLEMENT")
HOT_MARKETS = 8  # with more markets than markets_per_block, the first ones trade every block
TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")


class Publication:
    """One message a producer puts on a websocket topic (the socks side adds the envelope).

    ``contents`` is given, or built on first read by ``make`` (from values that no longer
    change): socks reads it only for a topic someone subscribes to, so the many messages of
    topics nobody follows cost no formatting.
    """

    __slots__ = ("_contents", "_make", "channel", "id", "subaccount_number")

    def __init__(
        self,
        channel: str,
        id: str,
        contents: Optional[Dict[str, Any]] = None,
        subaccount_number: Optional[int] = None,
        *,
        make: Optional[Callable[[], Dict[str, Any]]] = None,
    ) -> None:
        if (contents is None) == (make is None):
            raise ValueError("give exactly one of contents and make")
        self.channel = channel
        self.id = id
        self.subaccount_number = subaccount_number
        self._contents = contents
        self._make = make

    @property
    def contents(self) -> Dict[str, Any]:
        if self._contents is None:
            assert self._make is not None
            self._contents = self._make()
            self._make = None
        return self._contents

    def __repr__(self) -> str:
        return f"Publication({self.channel!r}, {self.id!r}, {self.contents!r})"


def trade_update(rest_trade: Dict[str, Any]) -> Dict[str, Any]:
    """The websocket ``TradeContent`` of a REST trade: ender's key order, no createdAtHeight."""
    keys = ("id", "size", "price", "side", "createdAt", "type")
    return {key: rest_trade[key] for key in keys}


@dataclass
class MarketState:
    spec: MarketSpec
    book: OrderBook
    oracle_ticks: int
    last_price: Decimal
    candles: CandleSeries
    trades: Deque[Tuple[int, Dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=MAX_TRADES)
    )
    volume_24h: Decimal = Decimal(0)
    trades_24h: int = 0
    open_interest: Decimal = Decimal(0)
    next_funding_rate: Decimal = Decimal(0)
    sent_trading: Dict[str, Any] = field(default_factory=dict)
    oracle_changed: bool = True
    status: str = "ACTIVE"
    # time.monotonic() from which socks' market cache knows the ticker (list_market's delay)
    known_at: float = 0.0


@dataclass
class PendingChanges:
    """Per-subaccount changes collected during a block and published at its end."""

    positions: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    asset: bool = False
    orders: Dict[str, DemoOrder] = field(default_factory=dict)
    fills: List[Dict[str, Any]] = field(default_factory=list)
    transfers: List[Dict[str, Any]] = field(default_factory=list)


class SimulatorBase:
    """The simulator's fields and the helpers every part uses; not thread-safe (the emulator
    drives it from its event loop only)."""

    config: EmulatorConfig
    rng: random.Random
    specs: Dict[str, MarketSpec]
    demo_address: str
    height: int
    time: float
    markets: Dict[str, MarketState]
    active: List[MarketState]
    subaccounts: Dict[int, Subaccount]
    crossed_levels: bool
    silent_deletions: bool
    _next_order: int
    _event_index: int
    _client_id: int
    _pending: Dict[int, PendingChanges]
    _last_trading_time: float

    def _order_id(self) -> str:
        self._next_order += 1
        return f"o{self._next_order}"

    def _level_pub(self, state: MarketState, change: LevelChange) -> Publication:
        side, price, size = change
        spec = state.spec
        return Publication(
            "v4_orderbook", spec.ticker, make=lambda: {side: [[spec.price(price), spec.size(size)]]}
        )

    def oracle(self) -> Dict[str, Decimal]:
        return {t: s.spec.price_dec(s.oracle_ticks) for t, s in self.markets.items()}

    def imf(self) -> Dict[str, Decimal]:
        return {t: Decimal(s.spec.initial_margin_fraction) for t, s in self.markets.items()}

    def _pending_for(self, number: int) -> PendingChanges:
        pending = self._pending.get(number)
        if pending is None:
            pending = self._pending[number] = PendingChanges()
        return pending

    def _tx_hash(self) -> str:
        return f"{self.rng.getrandbits(256):064X}"

    if TYPE_CHECKING:  # one part calls into another; the mixins of MarketSimulator provide these

        def _place(
            self,
            state: MarketState,
            side: str,
            price: int,
            size: int,
            owner: Optional[int] = None,
            order_id: Optional[str] = None,
        ) -> LevelChange: ...

        def _take(
            self,
            state: MarketState,
            taker_side: str,
            size: int,
            max_levels: int,
            taker: Optional[Tuple[int, DemoOrder]],
            out: List[Publication],
            trades: List[Dict[str, Any]],
        ) -> int: ...

        def _demo_fill(
            self,
            number: int,
            order_id: str,
            state: MarketState,
            side: str,
            price: Decimal,
            size: Decimal,
            liquidity: str,
            event_id: str,
            tx_hash: str,
        ) -> None: ...
