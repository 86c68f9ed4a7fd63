"""protocol/_validation.py: tickers, candle resolutions, bech32 addresses, subaccount numbers."""

from __future__ import annotations

import enum

import pytest

from dydx_ws.protocol._validation import (
    CANDLE_RESOLUTIONS,
    make_address,
    validate_address,
    validate_resolution,
    validate_subaccount_number,
    validate_ticker,
)

REAL_ADDRESSES = [
    "dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art",
    "dydx1kzsvkf2ghjqlysuffdkhcdctknl4rsvcx5hkm5",
    "dydx199tqg4wdlnu4qjlxchpd7seg454937hjrknju4",
    "dydx1n56z5fhmemtffzkt2eqyf9kuc7ycjfs86mvqy7",
]

# --- tickers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ticker",
    [
        "BTC-USD",
        "ETH-USD",
        "1INCH-USD",
        "kSHIB-USD",
        "WIF-USD",
        "TRY-USD",
        "AAVE-USD",
        "JASMY-USD",
        "BTC-USDC",
        "MOG,ETHEREUM,0xaaee1a9723aadb7afa2810263653a34ba2c21c7a-USD",
    ],
)
def test_valid_tickers(ticker: str) -> None:
    assert validate_ticker(ticker) == ticker


@pytest.mark.parametrize(
    ("ticker", "message"),
    [
        ("", "empty"),
        (" BTC-USD", "whitespace"),
        ("BTC-USD\n", "whitespace"),
        ("BTC USD", "whitespace"),
        ("BTC/USD", "'/'"),
        ("BTC-USD/1MIN", "'/'"),
        ("btc-usd", "did you mean 'BTC-USD'"),
        ("btc-USD", "did you mean 'BTC-USD'"),
        ("BTCUSD", "BASE-QUOTE"),
        ("-USD", "BASE-QUOTE"),
        ("BTC-", "BASE-QUOTE"),
        ("BTC--USD", "BASE-QUOTE"),
        ("BTC-US$", "BASE-QUOTE"),
        ("A" * 200 + "-USD", "too long"),
    ],
)
def test_invalid_tickers(ticker: str, message: str) -> None:
    with pytest.raises(ValueError, match="ticker") as info:
        validate_ticker(ticker)
    assert message in str(info.value)


def test_ticker_must_be_str() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        validate_ticker(None)  # type: ignore[arg-type]


# --- resolutions -----------------------------------------------------------------------------


class StrResolution(str, enum.Enum):
    ONE_MINUTE = "1MIN"
    ONE_DAY = "1DAY"


class PlainResolution(enum.Enum):
    FIVE_MINUTES = "5MINS"


class Stringy:
    def __str__(self) -> str:
        return "4HOURS"


@pytest.mark.parametrize("value", CANDLE_RESOLUTIONS)
def test_all_server_resolutions(value: str) -> None:
    assert validate_resolution(value) == value


def test_resolution_from_enums_and_objects() -> None:
    assert validate_resolution(StrResolution.ONE_MINUTE) == "1MIN"
    assert type(validate_resolution(StrResolution.ONE_DAY)) is str
    assert validate_resolution(PlainResolution.FIVE_MINUTES) == "5MINS"
    assert validate_resolution(Stringy()) == "4HOURS"


@pytest.mark.parametrize("value", ["", "1m", "1HOURS", "2MIN", None, 60, "1MIN "])
def test_invalid_resolutions(value: object) -> None:
    with pytest.raises(ValueError, match="1MIN, 5MINS, 15MINS, 30MINS, 1HOUR, 4HOURS, 1DAY"):
        validate_resolution(value)


def test_resolution_case_hint() -> None:
    with pytest.raises(ValueError, match="did you mean '1MIN'"):
        validate_resolution("1min")


# --- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize("address", REAL_ADDRESSES)
def test_real_addresses(address: str) -> None:
    assert validate_address(address) == address
    assert validate_address(address.upper()) == address  # canonical form is lowercase


def test_make_address_round_trip() -> None:
    for payload in (bytes(20), bytes(range(20)), bytes(range(100, 132)), b"\xff" * 20):
        address = make_address(payload)
        assert address.startswith("dydx1")
        assert validate_address(address) == address
    assert make_address(bytes(20)) == "dydx1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq66wm82"


def test_make_address_reproduces_real_address() -> None:
    # Decode the data part by hand with the charset, re-encode, compare.
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    for address in REAL_ADDRESSES:
        values = [charset.index(c) for c in address[5:-6]]
        bits = "".join(f"{v:05b}" for v in values)
        payload = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - 7, 8))
        assert len(payload) == 20
        assert make_address(payload) == address


@pytest.mark.parametrize(
    "vector",
    [  # valid bech32 strings from BIP-173 ("Test vectors")
        "A12UEL5L",
        "a12uel5l",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    ],
)
def test_checksum_matches_bip173_vectors(vector: str) -> None:
    from dydx_ws.protocol import _validation as v

    lowered = vector.lower()
    hrp, data = lowered[: lowered.rfind("1")], lowered[lowered.rfind("1") + 1 :]
    assert v._polymod(v._hrp_expand(hrp) + [v._CHARSET.index(c) for c in data]) == 1


def test_bip173_segwit_vector_through_make_address_checksum() -> None:
    # bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 = hrp "bc", witness version 0 ("q"), then the
    # 20-byte program. make_address has no version byte, so rebuild the checksum the same way.
    from dydx_ws.protocol import _validation as v

    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    data = [0, *v._convert_bits(program, 8, 5, pad=True)]
    polymod = v._polymod([*v._hrp_expand("bc"), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    encoded = "bc1" + "".join(v._CHARSET[d] for d in data + checksum)
    assert encoded == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    # and make_address shares the same conversion for the program bits
    assert make_address(program, hrp="bc").startswith("bc1w508d6qejxtdg4y5r3zarvary0c5xw7k")


def _flip(address: str, index: int) -> str:
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    c = address[index]
    return address[:index] + charset[(charset.index(c) + 1) % 32] + address[index + 1 :]


@pytest.mark.parametrize("index", [5, 10, 20, 30, 42])
def test_single_character_typo_fails_checksum(index: int) -> None:
    with pytest.raises(ValueError, match="invalid checksum"):
        validate_address(_flip(REAL_ADDRESSES[0], index))


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "empty"),
        ("dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6arT", "mixes upper and lower case"),
        ("cosmos14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art", "expected 'dydx'"),
        ("dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6arb", "invalid bech32 characters ['b']"),
        ("dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6ar", "invalid checksum"),
        ("dydx1qqqqq", "too short"),
        ("dydx", "no '1' separator"),
        (" dydx14zzueazeh0hj67cghhf9jypslcf9sh2n5k6art", "whitespace"),
        ("dydx1" + "q" * 90, "too long"),
    ],
)
def test_invalid_addresses(address: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_address(address)
    assert message in str(info.value)


def test_wrong_hrp_with_valid_checksum() -> None:
    with pytest.raises(ValueError, match="expected 'dydx'"):
        validate_address(make_address(bytes(20), hrp="cosmos"))


def test_payload_length_must_be_20_or_32() -> None:
    assert validate_address(make_address(bytes(32)))
    for n in (1, 19, 21, 31, 33):
        with pytest.raises(ValueError, match=f"carries {n} bytes"):
            validate_address(make_address(bytes(n)))


def test_bech32m_checksum_is_rejected() -> None:
    # Build a bech32m string by hand: same data, checksum constant 0x2bc830a3.
    from dydx_ws.protocol import _validation as v

    data = v._convert_bits(bytes(20), 8, 5, pad=True)
    polymod = v._polymod([*v._hrp_expand("dydx"), *data, 0, 0, 0, 0, 0, 0]) ^ 0x2BC830A3
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    address = "dydx1" + "".join(v._CHARSET[d] for d in data + checksum)
    with pytest.raises(ValueError, match="bech32m"):
        validate_address(address)


def test_non_zero_padding_is_rejected() -> None:
    # 20 bytes = 160 bits = 32 groups of 5: no padding. 21 bytes -> 34 groups with 2 padding
    # bits; set them and re-checksum to hit the padding rule rather than the checksum.
    from dydx_ws.protocol import _validation as v

    data = v._convert_bits(bytes(21), 8, 5, pad=True)
    data[-1] |= 1
    polymod = v._polymod([*v._hrp_expand("dydx"), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    address = "dydx1" + "".join(v._CHARSET[d] for d in data + checksum)
    with pytest.raises(ValueError, match="padding"):
        validate_address(address)


def test_make_address_arguments() -> None:
    with pytest.raises(ValueError):
        make_address("00" * 20)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_address(bytes(20), hrp="DYDX")
    with pytest.raises(ValueError):
        make_address(bytes(20), hrp="")
    with pytest.raises(ValueError, match="exceed 90"):
        make_address(bytes(60))


def test_address_must_be_str() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        validate_address(b"dydx1...")  # type: ignore[arg-type]


# --- subaccount numbers ----------------------------------------------------------------------


class IndexLike:
    def __index__(self) -> int:
        return 7


@pytest.mark.parametrize(("n", "parent"), [(0, False), (127_999, False), (0, True), (127, True)])
def test_valid_subaccount_numbers(n: int, parent: bool) -> None:
    assert validate_subaccount_number(n, parent=parent) == n


def test_index_like_numbers_are_accepted() -> None:
    assert validate_subaccount_number(IndexLike()) == 7


@pytest.mark.parametrize(
    ("n", "parent", "message"),
    [
        (128_000, False, "[0, 128000)"),
        (-1, False, "[0, 128000)"),
        (128, True, "parent subaccount number must be in [0, 128)"),
        (-1, True, "[0, 128)"),
        (True, False, "bool"),
        (False, True, "bool"),
        (1.0, False, "float"),
        ("0", False, "str"),
        (None, False, "NoneType"),
    ],
)
def test_invalid_subaccount_numbers(n: object, parent: bool, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_subaccount_number(n, parent=parent)
    assert message in str(info.value)
