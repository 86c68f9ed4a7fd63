"""Deterministic, mainnet-looking ticker lists for ``IndexerEmulator(markets=N)``.

The list starts with the emulator's defaults (BTC-USD, ETH-USD), then the markets with known
starting prices, then real listed bases; past those it makes up unique pronounceable bases
(``BAKO-USD``), so any count up to ``MAX_MARKETS`` gives the same tickers every time.
"""

from __future__ import annotations

import random
from typing import List, Sequence, Tuple, Union

MAX_MARKETS = 5000

# Real perpetual bases, most traded first (the first ten have known prices in markets.py).
REAL_BASES: Tuple[str, ...] = (
    "BTC", "ETH", "SOL", "LINK", "DOGE", "AVAX", "ADA", "XRP", "LTC", "DOT",
    "POL", "ATOM", "NEAR", "APT", "ARB", "OP", "SUI", "SEI", "TIA", "INJ",
    "FIL", "UNI", "AAVE", "MKR", "CRV", "LDO", "SNX", "COMP", "SUSHI", "YFI",
    "BCH", "ETC", "XLM", "TRX", "EOS", "ALGO", "XTZ", "ICP", "HBAR", "VET",
    "EGLD", "FTM", "SAND", "MANA", "AXS", "APE", "GALA", "ENS", "IMX", "BLUR",
    "PEPE", "SHIB", "WIF", "BONK", "FLOKI", "JUP", "PYTH", "JTO", "W", "ENA",
    "ETHFI", "STRK", "DYM", "ORDI", "WLD", "TON", "RUNE", "KAVA", "OSMO", "DYDX",
    "AEVO", "ALT", "MEME", "ZETA", "PIXEL", "PORTAL", "MANTA", "XAI", "ONDO", "JASMY",
    "GRT", "FET", "OCEAN", "RENDER", "AR", "THETA", "STX", "KAS", "MINA", "FLOW",
    "CHZ", "ZIL", "ZEC", "XMR", "DASH", "NEO", "QTUM", "IOTA", "ONE", "CELO",
    "KSM", "ROSE", "GMX", "DODO", "1INCH", "BAL", "BAT", "ENJ", "LRC", "ZRX",
    "ANKR", "STORJ", "SKL", "MASK", "API3", "BAND", "UMA", "RSR", "ICX", "WAVES",
    "KNC", "CFX", "ASTR", "GLMR", "MOVR", "SUPER", "MAGIC", "PENDLE", "RDNT", "GNS",
    "SSV", "RPL", "FXS", "CVX", "LQTY", "SPELL", "JOE", "HOOK", "HIGH", "ID",
    "ARKM", "CYBER", "NTRN", "TRB", "BIGTIME", "BLAST", "ZK", "ZRO", "IO", "NOT",
    "BOME", "SAGA", "OMNI", "REZ", "TNSR", "MEW", "POPCAT", "BRETT", "MOG", "TURBO",
    "NEIRO", "GOAT", "PNUT", "ACT", "MOODENG", "VIRTUAL", "AI16Z", "FARTCOIN", "TRUMP",
    "MELANIA", "HYPE", "MOVE", "ME", "USUAL", "PENGU", "BERA", "IP", "KAITO", "S",
    "ANIME", "TAO", "AKT", "EIGEN", "SCR", "GRASS", "DRIFT", "CETUS", "DEEP", "ORCA",
    "RAY", "KMNO", "MOBILE", "HNT", "IOTX", "PRIME", "BEAM", "ILV", "YGG", "GMT",
    "LPT", "GLM", "NMR", "CTSI", "COTI", "AUDIO", "RLC", "OGN", "ALICE", "TLM",
    "SLP", "CELR", "CKB", "DGB", "RVN", "SC", "HOT", "LSK", "STEEM", "HIVE",
    "WAXP", "BNT", "POWR", "REQ", "NKN", "DENT", "JST", "SUN", "LUNA", "LUNC",
    "USTC", "XDC", "QNT", "FLR", "SGB", "CORE", "ACH", "AGLD", "HFT", "PEOPLE",
    "LOOKS", "T", "CHR", "FLUX", "VANRY", "ARPA", "AERO", "DEGEN", "BANANA", "ZEUS",
    "WEN", "JITO", "SAFE", "EDU", "AXL", "METIS", "BOBA", "LISTA", "NOS", "SYN",
)  # fmt: skip

_CONSONANTS = "BCDFGKLMNPRSTVXZ"
_VOWELS = "AEIOU"


def _made_up_bases() -> List[str]:
    """Every consonant-vowel-consonant-vowel base, in a fixed shuffled order."""
    bases = [
        a + b + c + d for a in _CONSONANTS for b in _VOWELS for c in _CONSONANTS for d in _VOWELS
    ]
    random.Random(20240101).shuffle(bases)
    real = set(REAL_BASES)
    return [base for base in bases if base not in real]


def market_tickers(count: int) -> Tuple[str, ...]:
    """The first ``count`` tickers of the emulator's mainnet-sized list (``BASE-USD``)."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"a market count must be an int, got {count!r}")
    if not 1 <= count <= MAX_MARKETS:
        raise ValueError(f"a market count must be 1..{MAX_MARKETS}, got {count}")
    bases = list(REAL_BASES[:count])
    if count > len(bases):
        bases.extend(_made_up_bases()[: count - len(bases)])
    return tuple(f"{base}-USD" for base in bases)


def resolve_markets(markets: Union[int, Sequence[str]]) -> Tuple[str, ...]:
    """``markets`` as a tuple of tickers: a count gives :func:`market_tickers`, a sequence is
    kept as given (checked later). A bool, a str or anything else raises ``ValueError``."""
    if isinstance(markets, bool):
        raise ValueError(f"markets must be a count or a sequence of tickers, got {markets!r}")
    if isinstance(markets, int):
        return market_tickers(markets)
    if isinstance(markets, (str, bytes)):
        raise ValueError(
            f"markets must be a count or a sequence of tickers, got the string {markets!r} "
            f"(use [{markets!r}] for one market)"
        )
    try:
        tickers = tuple(markets)
    except TypeError:
        raise ValueError(
            f"markets must be a count or a sequence of tickers, got {markets!r}"
        ) from None
    if len(tickers) > MAX_MARKETS:
        raise ValueError(f"at most {MAX_MARKETS} markets, got {len(tickers)}")
    return tickers
