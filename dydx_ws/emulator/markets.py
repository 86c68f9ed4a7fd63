"""Static perpetual-market parameters (tick/step sizes, quantum exponents) for simulated tickers."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Dict, Sequence, Tuple

from .jsutil import scaled

_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.,_]*-[A-Z0-9]+$")

# Starting prices for well-known tickers; anything else gets a price derived from its name.
KNOWN_PRICES: Dict[str, str] = {
    "BTC-USD": "65000",
    "ETH-USD": "3400",
    "SOL-USD": "150",
    "LINK-USD": "14",
    "DOGE-USD": "0.15",
    "AVAX-USD": "30",
    "ADA-USD": "0.45",
    "XRP-USD": "0.6",
    "LTC-USD": "80",
    "DOT-USD": "6.5",
}

KNOWN_MARGINS: Dict[str, Tuple[str, str]] = {
    "BTC-USD": ("0.02", "0.012"),
    "ETH-USD": ("0.02", "0.012"),
}


@dataclass(frozen=True)
class MarketSpec:
    """Everything fixed about one perpetual market."""

    ticker: str
    clob_pair_id: int
    initial_price_ticks: int
    tick_exp: int
    step_exp: int
    atomic_resolution: int
    quantum_conversion_exponent: int
    step_base_quantums: int
    subticks_per_tick: int
    initial_margin_fraction: str
    maintenance_margin_fraction: str
    market_type: str

    @property
    def tick_size(self) -> str:
        return scaled(1, self.tick_exp)

    @property
    def step_size(self) -> str:
        return scaled(1, self.step_exp)

    def price(self, ticks: int) -> str:
        return scaled(ticks, self.tick_exp)

    def size(self, steps: int) -> str:
        return scaled(steps, self.step_exp)

    def price_dec(self, ticks: int) -> Decimal:
        return Decimal(ticks).scaleb(self.tick_exp)

    def size_dec(self, steps: int) -> Decimal:
        return Decimal(steps).scaleb(self.step_exp)


def is_ticker(text: str) -> bool:
    """True if ``text`` looks like a perpetual ticker such as ``BTC-USD``."""
    return bool(_TICKER.match(text))


def _name_price(ticker: str) -> Decimal:
    digest = hashlib.sha256(ticker.encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return Decimal(str(round(10 ** (fraction * 4 - 0.5), 4)))  # ~0.3 .. ~3000


def make_spec(ticker: str, clob_pair_id: int) -> MarketSpec:
    """Derive a realistic market spec (BTC-USD and ETH-USD match mainnet's parameters)."""
    price = Decimal(KNOWN_PRICES[ticker]) if ticker in KNOWN_PRICES else _name_price(ticker)
    magnitude = math.floor(math.log10(float(price)))
    tick_exp = magnitude - 4
    step_exp = -magnitude if magnitude > 0 else -magnitude + 1
    atomic_resolution = step_exp - 6
    qce = -9
    spt_exp = tick_exp - qce + atomic_resolution + 6
    if spt_exp < 0:
        qce += spt_exp
        spt_exp = 0
    imf, mmf = KNOWN_MARGINS.get(ticker, ("0.05", "0.03"))
    return MarketSpec(
        ticker=ticker,
        clob_pair_id=clob_pair_id,
        initial_price_ticks=int(price.scaleb(-tick_exp)),
        tick_exp=tick_exp,
        step_exp=step_exp,
        atomic_resolution=atomic_resolution,
        quantum_conversion_exponent=qce,
        step_base_quantums=1_000_000,
        subticks_per_tick=10**spt_exp,
        initial_margin_fraction=imf,
        maintenance_margin_fraction=mmf,
        market_type="CROSS" if clob_pair_id < 2 or ticker in KNOWN_PRICES else "ISOLATED",
    )


def make_specs(tickers: Sequence[str]) -> Dict[str, MarketSpec]:
    """Specs for ``tickers`` in order; the clob pair id is the position in the list."""
    specs: Dict[str, MarketSpec] = {}
    for index, ticker in enumerate(tickers):
        if not is_ticker(ticker):
            raise ValueError(f"not a perpetual ticker: {ticker!r}")
        if ticker in specs:
            raise ValueError(f"duplicate market {ticker!r}")
        specs[ticker] = make_spec(ticker, index)
    return specs
