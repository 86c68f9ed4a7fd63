"""Bech32 (BIP-173) encoding, used to mint and check ``dydx1…`` addresses in the emulator."""

from __future__ import annotations

import hashlib
from typing import List, Optional, Sequence, Tuple

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> List[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _checksum(hrp: str, data: Sequence[int]) -> List[int]:
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def convertbits(data: Sequence[int], frombits: int, tobits: int, pad: bool = True) -> List[int]:
    """Regroup a sequence of ``frombits``-bit integers into ``tobits``-bit integers."""
    acc = 0
    bits = 0
    out: List[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise ValueError("invalid data value")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("invalid padding")
    return out


def encode(hrp: str, payload: bytes) -> str:
    """Bech32-encode ``payload`` (raw bytes) under the human-readable part ``hrp``."""
    data = convertbits(list(payload), 8, 5)
    return hrp + "1" + "".join(CHARSET[d] for d in [*data, *_checksum(hrp, data)])


def decode(address: str) -> Optional[Tuple[str, bytes]]:
    """Return ``(hrp, payload)`` for a valid Bech32 string, else ``None``."""
    if not isinstance(address, str) or not 8 <= len(address) <= 90:
        return None
    if any(ord(c) < 33 or ord(c) > 126 for c in address):
        return None
    if address.lower() != address and address.upper() != address:
        return None
    address = address.lower()
    pos = address.rfind("1")
    if pos < 1 or pos + 7 > len(address):
        return None
    hrp = address[:pos]
    if any(c not in CHARSET for c in address[pos + 1 :]):
        return None
    data = [CHARSET.index(c) for c in address[pos + 1 :]]
    if _polymod([*_hrp_expand(hrp), *data]) != 1:
        return None
    try:
        payload = bytes(convertbits(data[:-6], 5, 8, pad=False))
    except ValueError:
        return None
    return hrp, payload


def is_dydx_address(address: str) -> bool:
    """True for a checksum-valid ``dydx1…`` account address (20- or 32-byte payload)."""
    decoded = decode(address)
    return decoded is not None and decoded[0] == "dydx" and len(decoded[1]) in (20, 32)


def demo_address(seed: int) -> str:
    """The deterministic demo account address for a simulator seed."""
    digest = hashlib.sha256(f"dydx-ws-emulator-demo-{seed}".encode()).digest()
    return encode("dydx", digest[:20])
