"""Building blocks shared by every wire model: the camelCase dataclasses-json base, open string
enums, and field helpers for timestamps and heights (which travel as strings on the wire)."""

from __future__ import annotations

import re
from dataclasses import MISSING, Field, field
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Dict, Optional, TypeVar

from dataclasses_json import DataClassJsonMixin, LetterCase, Undefined, config

__all__ = [
    "EPOCH",
    "OpenEnum",
    "WireModel",
    "format_timestamp",
    "height",
    "opt_height",
    "opt_timestamp",
    "parse_decimal",
    "parse_timestamp",
    "renamed",
    "timestamp",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_UNKNOWN_ENUM_VALUES = 256


# The Indexer's number syntax: a plain decimal (Big.js ``toFixed()`` and Postgres ``numeric``
# text), an exponent tolerated. ``Decimal()`` alone also takes NaN, sNaN, Infinity, ``1_000``,
# surrounding whitespace, a leading ``+`` or ``.`` and non-ASCII digits: none of them is a price.
NUMBER_SYNTAX = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,4})?").fullmatch


def parse_decimal(value: Any) -> Decimal:
    """A money or size field: a string in the Indexer's number syntax (a JSON integer or finite
    float is accepted too); anything else raises ``ValueError``/``TypeError``."""
    if value.__class__ is str:
        if NUMBER_SYNTAX(value):
            return Decimal(value)
        raise ValueError(f"{value!r} is not a number in the Indexer's syntax")
    if isinstance(value, bool):
        raise TypeError("expected a decimal string, got bool")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    else:
        raise TypeError(f"expected a decimal string, got {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _checked_decimal_fields(cls: type) -> None:
    """Give every ``Decimal`` field declared on ``cls`` the :func:`parse_decimal` decoder, so
    ``from_dict`` applies the same number syntax as the generated fast decoders."""
    own: Dict[str, Any] = vars(cls).get("__annotations__", {})
    for name, annotation in list(own.items()):
        if annotation not in ("Decimal", "Optional[Decimal]", Decimal, Optional[Decimal]):
            continue
        declared = cls.__dict__.get(name, MISSING)
        if isinstance(declared, Field):
            meta = dict(declared.metadata.get("dataclasses_json", {}))
            default, factory = declared.default, declared.default_factory
        else:
            meta, default, factory = {}, declared, MISSING
        meta.setdefault("decoder", parse_decimal)
        checked: Any = field(  # type: ignore[call-overload]
            default=default, default_factory=factory, metadata={"dataclasses_json": meta}
        )
        setattr(cls, name, checked)


class WireModel(DataClassJsonMixin):
    """Base of every wire model: snake_case attributes mapped to the wire's camelCase keys,
    unknown keys ignored (the server adds fields over time), ``Decimal`` fields in the Indexer's
    number syntax only (:func:`parse_decimal`)."""

    dataclass_json_config = config(  # type: ignore[assignment]
        letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE
    )["dataclasses_json"]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _checked_decimal_fields(cls)  # runs before @dataclass reads the fields


class OpenEnum(str, Enum):
    """A string enum that never raises on a value it does not know yet.

    Unknown values become pseudo-members (``.value`` is the wire string, ``.name`` too) that compare
    equal to that string, so new server values flow through instead of breaking the decoder.
    """

    @classmethod
    def _missing_(cls, value: object) -> Optional[OpenEnum]:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        if len(cls._value2member_map_) < _MAX_UNKNOWN_ENUM_VALUES:
            cls._value2member_map_[value] = member  # later look-ups of this value are fast
        return member

    def __str__(self) -> str:
        return str(self.value)


_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: Any) -> datetime:
    """Parse the Indexer's ISO-8601 UTC timestamps (``2024-07-24T19:12:35.705Z``) to an aware
    UTC datetime. Naive inputs are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            # Python < 3.11 accepts only 3 or 6 fractional digits: pad or cut to 6.
            dt = datetime.fromisoformat(
                _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
            )
    else:
        raise TypeError(f"timestamp must be an ISO-8601 string, got {type(value).__name__}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    if dt.utcoffset():
        return dt.astimezone(timezone.utc)
    return dt if dt.tzinfo is timezone.utc else dt.replace(tzinfo=timezone.utc)


def format_timestamp(dt: datetime) -> str:
    """The wire form of a timestamp: ISO-8601 UTC with milliseconds (microseconds if needed)."""
    dt = dt.astimezone(timezone.utc)
    spec = "milliseconds" if dt.microsecond % 1000 == 0 else "microseconds"
    return dt.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_height(value: Any) -> int:
    """Heights travel as decimal strings; an int is accepted too (never a bool or float)."""
    if value.__class__ is int or isinstance(value, str):
        return int(value)
    raise TypeError(f"height must be a string or integer, got {type(value).__name__}")


T = TypeVar("T")


def _meta(
    encoder: Callable[[Any], Any],
    decoder: Callable[[Any], Any],
    name: Optional[str] = None,
) -> Dict[str, Any]:
    if name is None:
        return config(encoder=encoder, decoder=decoder)
    return config(encoder=encoder, decoder=decoder, field_name=name)


def _opt(fn: Callable[[Any], T]) -> Callable[[Any], Optional[T]]:
    return lambda v: None if v is None else fn(v)


_format_opt_timestamp = _opt(format_timestamp)
_parse_opt_timestamp = _opt(parse_timestamp)
_format_opt_height = _opt(str)
_parse_opt_height = _opt(parse_height)

# Field decoders whose result is exactly that of a plain conversion to this type, so generated
# fast decoders (protocol/_decoders.py) may inline the conversion instead of calling the decoder.
INLINE_DECODERS: Dict[Callable[[Any], Any], type] = {
    parse_decimal: Decimal,
    parse_timestamp: datetime,
    _parse_opt_timestamp: datetime,
    parse_height: int,
    _parse_opt_height: int,
}


def timestamp(name: Optional[str] = None) -> Any:
    """A required timestamp field (wire: ISO string; Python: aware UTC datetime)."""
    return field(metadata=_meta(format_timestamp, parse_timestamp, name))


def opt_timestamp(name: Optional[str] = None) -> Any:
    """An optional timestamp field, ``None`` when absent or null."""
    return field(default=None, metadata=_meta(_format_opt_timestamp, _parse_opt_timestamp, name))


def height(name: Optional[str] = None) -> Any:
    """A required block height (wire: decimal string; Python: int)."""
    return field(metadata=_meta(str, parse_height, name))


def opt_height(name: Optional[str] = None) -> Any:
    """An optional block height, ``None`` when absent or null."""
    return field(default=None, metadata=_meta(_format_opt_height, _parse_opt_height, name))


def parse_event_id(value: Any) -> str:
    """Fill event ids are 24-hex strings; the obsolete ``{"type":"Buffer","data":[...]}`` form
    (old docs) is converted to the same hex text."""
    if isinstance(value, str):
        return value
    data = value.get("data") if isinstance(value, dict) else None
    if isinstance(data, list) and value.get("type") == "Buffer":
        return bytes(data).hex()
    raise TypeError(f"event id must be a hex string, got {type(value).__name__}")


def event_id() -> Any:
    """An optional fill event id (hex string), tolerant of the legacy Buffer form."""
    return field(default=None, metadata=config(decoder=_opt(parse_event_id)))


def renamed(name: str, default: Any = None) -> Any:
    """A field whose wire key is not the plain camelCase of its name (e.g. ``priceChange24H``)."""
    return field(default=default, metadata=config(field_name=name))
