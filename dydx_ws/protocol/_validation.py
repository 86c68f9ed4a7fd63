"""Checks on user input, run before anything is sent: each raises ``ValueError`` with a clear text.

Architecture: ``subscribe_*`` and the REST client call these on the user's thread, so a typo
fails at the call site instead of coming back later as a server ``error`` frame (which costs a
rate-limit point, docs/protocol.md §2.4) or as a subscription that silently never receives data.
Each function returns the canonical value to put on the wire.

- Tickers: ``BASE-QUOTE``. The base allows letters of either case (``kSHIB-USD`` is real),
  digits (``1INCH-USD``) and ``, . _`` (long-tail markets whose base names a chain and contract);
  it must contain at least one uppercase letter or digit, and the quote is uppercase, so
  ``btc-usd`` is rejected rather than silently never matching. ``/`` and whitespace are rejected:
  ``/`` would corrupt candle ids (``BTC-USD/1MIN``).
- Candle resolutions: exactly the server's seven values; an enum member is accepted by value.
- Addresses: bech32 (BIP-173; bech32m is rejected) with human-readable part ``dydx``, a valid
  checksum, no mixed case and a 20- or 32-byte payload. The checksum code is written here from
  the BIP-173 specification; :func:`make_address` encodes (for tests and the emulator).
- Subaccount numbers: ``0 <= n < 128000``, parent subaccounts ``0 <= n < 128``.
"""

from __future__ import annotations

import operator
import re
from typing import Iterable, List, Sequence, SupportsIndex

__all__ = [
    "CANDLE_RESOLUTIONS",
    "MAX_PARENT_SUBACCOUNT_NUMBER",
    "MAX_SUBACCOUNT_NUMBER",
    "make_address",
    "validate_address",
    "validate_resolution",
    "validate_subaccount_number",
    "validate_ticker",
]

CANDLE_RESOLUTIONS = ("1MIN", "5MINS", "15MINS", "30MINS", "1HOUR", "4HOURS", "1DAY")
MAX_SUBACCOUNT_NUMBER = 128_000  # exclusive (socks: n < 128000)
MAX_PARENT_SUBACCOUNT_NUMBER = 128  # exclusive (socks: n < 128)
ADDRESS_HRP = "dydx"

_MAX_TICKER_LENGTH = 128
_TICKER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9,._]*-[A-Z][A-Z0-9]*")


def validate_ticker(ticker: str) -> str:
    """Return ``ticker`` if it looks like a dYdX perpetual ticker (``BTC-USD``), else raise."""
    if not isinstance(ticker, str):
        raise ValueError(f"ticker must be a str like 'BTC-USD', got {type(ticker).__name__}")
    if not ticker:
        raise ValueError("ticker must not be empty (expected e.g. 'BTC-USD')")
    if len(ticker) > _MAX_TICKER_LENGTH:
        raise ValueError(f"ticker is too long ({len(ticker)} > {_MAX_TICKER_LENGTH} characters)")
    if any(ch.isspace() for ch in ticker):
        raise ValueError(f"ticker {ticker!r} contains whitespace")
    if "/" in ticker:
        raise ValueError(f"ticker {ticker!r} contains '/', which would corrupt channel ids")
    if _TICKER_RE.fullmatch(ticker) is None:
        if _TICKER_RE.fullmatch(ticker.upper()) is not None:
            raise ValueError(
                f"ticker {ticker!r} has a lowercase quote; dYdX tickers are case-sensitive "
                f"(did you mean {ticker.upper()!r}?)"
            )
        raise ValueError(
            f"ticker {ticker!r} is not of the form BASE-QUOTE like 'BTC-USD' or 'kSHIB-USD' "
            "(base: letters, digits, ',', '.', '_'; quote: uppercase letters and digits)"
        )
    base = ticker.rsplit("-", 1)[0]
    if not any(ch.isupper() or ch.isdigit() for ch in base):
        raise ValueError(
            f"ticker {ticker!r} is lowercase; dYdX tickers are case-sensitive "
            f"(did you mean {ticker.upper()!r}?)"
        )
    return ticker


def validate_resolution(resolution: object) -> str:
    """Return the wire value (``"1MIN"``...) of a candle resolution given as str or enum."""
    candidates: List[object] = []
    value = getattr(resolution, "value", None)
    if value is not None:
        candidates.append(value)
    candidates.append(resolution if isinstance(resolution, str) else str(resolution))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate in CANDLE_RESOLUTIONS:
            return str(candidate)  # plain str, even for a str-Enum member
    hint = ""
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.upper() in CANDLE_RESOLUTIONS:
            hint = f" (did you mean {candidate.upper()!r}?)"
            break
    raise ValueError(
        f"invalid candle resolution {resolution!r}{hint}; "
        f"expected one of {', '.join(CANDLE_RESOLUTIONS)}"
    )


def validate_subaccount_number(number: object, parent: bool = False) -> int:
    """Return ``number`` as an int if it is a valid (parent) subaccount number, else raise.

    Integers and integer-like objects (``numpy.int64``, via ``__index__``) are accepted; ``bool``,
    ``float`` and ``str`` are not.
    """
    kind = "parent subaccount number" if parent else "subaccount number"
    if isinstance(number, bool):
        raise ValueError(f"{kind} must be an int, got bool {number!r}")
    if not isinstance(number, SupportsIndex):
        raise ValueError(f"{kind} must be an int, got {type(number).__name__} {number!r}")
    value = operator.index(number)
    limit = MAX_PARENT_SUBACCOUNT_NUMBER if parent else MAX_SUBACCOUNT_NUMBER
    if not 0 <= value < limit:
        raise ValueError(f"{kind} must be in [0, {limit}), got {value}")
    return value


# --- bech32 (BIP-173) -----------------------------------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {ch: i for i, ch in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_MAX_BECH32_LENGTH = 90


def _polymod(values: Iterable[int]) -> int:
    """The BCH checksum polynomial of BIP-173 over GF(32)."""
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> List[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> List[int]:
    """Regroup ``from_bits``-bit values into ``to_bits``-bit values; ValueError on bad padding."""
    acc = 0
    bits = 0
    out: List[int] = []
    mask = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & mask)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & mask)
    elif bits >= from_bits or (acc << (to_bits - bits)) & mask:
        raise ValueError("invalid padding in the data part")
    return out


def make_address(payload: bytes, hrp: str = ADDRESS_HRP) -> str:
    """Encode ``payload`` as a bech32 (BIP-173) address, e.g. 20 bytes -> ``dydx1...``."""
    if not isinstance(payload, (bytes, bytearray)):
        raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
    if not hrp or any(not 33 <= ord(c) <= 126 or c.isupper() for c in hrp):
        raise ValueError(f"hrp must be non-empty lowercase printable ASCII, got {hrp!r}")
    data = _convert_bits(payload, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ _BECH32_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    address = hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)
    if len(address) > _MAX_BECH32_LENGTH:
        raise ValueError(f"encoded address would exceed {_MAX_BECH32_LENGTH} characters")
    return address


def validate_address(address: str) -> str:
    """Return the canonical (lowercase) form of a valid ``dydx1...`` address, else raise."""
    if not isinstance(address, str):
        raise ValueError(f"address must be a str, got {type(address).__name__}")
    if not address:
        raise ValueError("address must not be empty (expected 'dydx1...')")
    if len(address) > _MAX_BECH32_LENGTH:
        raise ValueError(f"address is too long ({len(address)} > {_MAX_BECH32_LENGTH} characters)")
    if any(not 33 <= ord(c) <= 126 for c in address):
        raise ValueError(f"address {address!r} contains whitespace or non-ASCII characters")
    if address.lower() != address and address.upper() != address:
        raise ValueError(f"address {address!r} mixes upper and lower case")
    lowered = address.lower()
    sep = lowered.rfind("1")
    if sep < 1 or len(lowered) - sep - 1 < 6:
        raise ValueError(f"address {address!r} is not bech32 (no '1' separator or too short)")
    hrp, data_part = lowered[:sep], lowered[sep + 1 :]
    if hrp != ADDRESS_HRP:
        raise ValueError(f"address {address!r} has prefix {hrp!r}, expected {ADDRESS_HRP!r}")
    bad = sorted({c for c in data_part if c not in _CHARSET_INDEX})
    if bad:
        raise ValueError(f"address {address!r} contains invalid bech32 characters {bad}")
    data = [_CHARSET_INDEX[c] for c in data_part]
    check = _polymod(_hrp_expand(hrp) + data)
    if check == _BECH32M_CONST:
        raise ValueError(f"address {address!r} uses a bech32m checksum; dYdX addresses use bech32")
    if check != _BECH32_CONST:
        raise ValueError(f"address {address!r} has an invalid checksum (typo?)")
    try:
        payload = _convert_bits(data[:-6], 5, 8, pad=False)
    except ValueError as exc:
        raise ValueError(f"address {address!r}: {exc}") from None
    if len(payload) not in (20, 32):
        raise ValueError(
            f"address {address!r} carries {len(payload)} bytes; expected 20 (account) or 32"
        )
    return lowered
