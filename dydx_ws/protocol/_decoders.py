"""Fast decoders generated from the model dataclasses (the hot path never calls ``from_dict``).

For each model class, :func:`decoder_for` builds once, from the dataclass fields and their
dataclasses-json configuration, the Python source of a function that turns the wire ``dict`` into
an instance: wire keys are read by name, each value converted inline (``Decimal``, ``int``, enums,
timestamps, nested models, lists, dicts), and the instance created without going through
``__init__``, its attributes stored one by one (instances of a class then share one key table,
which is faster and about half the memory of a dict per instance). A field that is ``None`` and
defaults to ``None`` is not stored at all: the dataclass keeps that default as a class
attribute, so reading it, ``==``, ``repr``, ``to_dict`` and ``dataclasses.replace`` all see
``None`` (only ``vars(obj)`` omits it). The result equals ``Model.from_dict(data)`` for every
valid payload (a test proves it on every fixture); invalid payloads raise ordinary exceptions,
which :func:`locate_error` turns into the path of the offending field on the (slow) error path.
Each generated function's source is registered with ``linecache`` under a pseudo-filename of its
own, so a traceback through it shows the line that failed.
"""

from __future__ import annotations

import dataclasses
import itertools
import linecache
import typing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar, Union

from ..models._base import INLINE_DECODERS, NUMBER_SYNTAX, parse_decimal, parse_timestamp

__all__ = ["decoder_for", "locate_error"]

T = TypeVar("T")
Decoder = Callable[[Any], Any]

_MISSING = object()
_DECODERS: Dict[type, Decoder] = {}
_FIELD_PLANS: Dict[type, List[Tuple[str, str, bool, Decoder, Any]]] = {}
_TS_CACHE: Dict[str, datetime] = {}
_TS_CACHE_MAX = 8192
_GENERATED = itertools.count(1)  # numbers the pseudo-filenames of generated code


# -- converters used by generated code (cold paths only: the common case is inlined) -----------
def _to_str(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    raise TypeError(f"expected a string, got {type(v).__name__}")


_to_decimal = parse_decimal  # what the inlined string case leaves: other types, odd strings


def _to_int(v: Any) -> int:
    if isinstance(v, str):
        return int(v)
    raise TypeError(f"expected an integer, got {type(v).__name__}")


def _to_float(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    raise TypeError(f"expected a number, got {type(v).__name__}")


def _to_bool(v: Any) -> bool:
    raise TypeError(f"expected a boolean, got {type(v).__name__}")


def _list(v: Any) -> List[Any]:
    if v.__class__ is list:
        return v  # type: ignore[no-any-return]
    raise TypeError(f"expected a list, got {type(v).__name__}")


def _dict(v: Any) -> Dict[str, Any]:
    if v.__class__ is dict:
        return v  # type: ignore[no-any-return]
    raise TypeError(f"expected an object, got {type(v).__name__}")


def _timestamp(v: Any) -> datetime:
    dt = parse_timestamp(v)
    if v.__class__ is str:
        if len(_TS_CACHE) >= _TS_CACHE_MAX:
            _TS_CACHE.clear()
        _TS_CACHE[v] = dt
    return dt


# -- code generation --------------------------------------------------------------------------
class _Gen:
    """Accumulates the namespace of one generated function and renders value expressions."""

    def __init__(self) -> None:
        self.ns: Dict[str, Any] = {
            "_D": Decimal,
            "_NUM": NUMBER_SYNTAX,
            "_I": int,
            "_to_str": _to_str,
            "_to_decimal": _to_decimal,
            "_to_int": _to_int,
            "_to_float": _to_float,
            "_to_bool": _to_bool,
            "_list": _list,
            "_dict": _dict,
            "_TSC": _TS_CACHE,
            "_ts": _timestamp,
        }
        self._n = 0

    def const(self, value: Any) -> str:
        self._n += 1
        name = f"_c{self._n}"
        self.ns[name] = value
        return name

    def expr(self, tp: Any, v: str, depth: int = 0) -> str:
        """A Python expression converting the wire value named ``v`` to type ``tp``."""
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is Union:
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1:
                raise TypeError(f"unsupported union {tp}")
            return f"(None if {v} is None else {self.expr(inner[0], v, depth)})"
        if origin in (list, List):
            x = f"_x{depth}"
            return f"[{self.expr(args[0], x, depth + 1)} for {x} in _list({v})]"
        if origin in (dict, Dict):
            k, x = f"_k{depth}", f"_x{depth}"
            return f"{{{k}: {self.expr(args[1], x, depth + 1)} for {k}, {x} in _dict({v}).items()}}"
        if tp is Any or tp is object:
            return v
        if dataclasses.is_dataclass(tp):
            return f"{self.const(_LazyDecoder(typing.cast(type, tp)))}({v})"
        if isinstance(tp, type) and issubclass(tp, Enum):
            members = self.const(tp._value2member_map_)
            return f"({members}.get({v}) or {self.const(tp)}({v}))"
        if tp is str:
            return f"({v} if {v}.__class__ is str else _to_str({v}))"
        if tp is Decimal:
            return f"(_D({v}) if {v}.__class__ is str and _NUM({v}) else _to_decimal({v}))"
        if tp is bool:
            return f"({v} if {v}.__class__ is bool else _to_bool({v}))"
        if tp is int:  # heights travel as strings: both common cases are inlined
            return (
                f"({v} if {v}.__class__ is int else _I({v}) if {v}.__class__ is str"
                f" else _to_int({v}))"
            )
        if tp is float:
            return f"({v} if {v}.__class__ is float else _to_float({v}))"
        if tp is datetime:
            return f"(_TSC.get({v}) or _ts({v}))"
        raise TypeError(f"no fast decoder for type {tp!r}")


class _LazyDecoder:
    """Resolves a nested model's decoder on first use (models may refer to each other)."""

    __slots__ = ("_cls", "_fn")

    def __init__(self, cls: type) -> None:
        self._cls = cls
        self._fn: Optional[Decoder] = None

    def __call__(self, value: Any) -> Any:
        fn = self._fn
        if fn is None:
            fn = self._fn = decoder_for(self._cls)
        return fn(value)


def _wire_names(cls: type) -> Dict[str, str]:
    """Field name -> wire key, following the dataclasses-json class and field configuration."""
    cls_cfg: Dict[str, Any] = getattr(cls, "dataclass_json_config", None) or {}
    names = {}
    for f in dataclasses.fields(cls):
        cfg = f.metadata.get("dataclasses_json", {})
        case = cfg.get("letter_case") or cls_cfg.get("letter_case")
        names[f.name] = case(f.name) if case else f.name
    return names


def _field_decoder(f: dataclasses.Field[Any]) -> Optional[Decoder]:
    cfg = f.metadata.get("dataclasses_json", {})
    dec = cfg.get("decoder")
    return dec  # type: ignore[no-any-return]


def _compile(cls: type) -> Decoder:
    hints = typing.get_type_hints(cls)
    names = _wire_names(cls)
    gen = _Gen()
    gen.ns["_new"] = object.__new__
    gen.ns["_cls"] = cls
    gen.ns["_M"] = _MISSING
    lines = [f"def decode_{cls.__name__}(d):", "    o = _new(_cls)"]
    plan = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        wire = names[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        custom = _field_decoder(f)
        inline = INLINE_DECODERS.get(custom) if custom is not None else None
        if custom is not None and inline is None:
            conv = f"{gen.const(custom)}(v)"
        else:
            # Inline conversion (identical result to the field decoder, minus a call); the
            # missing/null handling below makes an Optional wrapper redundant.
            conv = gen.expr(inline or (tp if required else _strip_optional(tp)), "v")
        attr = f"o.{f.name}"
        if required:
            lines.append(f"    v = d[{wire!r}]")
            lines.append(f"    {attr} = {conv}")
        elif f.default is None:
            # Absent and null both mean None, which the class attribute (the dataclass
            # default) already provides: nothing is stored.
            lines.append(f"    v = d.get({wire!r})")
            lines.append(f"    if v is not None: {attr} = {conv}")
        elif f.default_factory is not dataclasses.MISSING:
            factory = gen.const(f.default_factory)
            lines.append(f"    v = d.get({wire!r}, _M)")
            value = f"{factory}() if v is _M else (None if v is None else {conv})"
            lines.append(f"    {attr} = {value}")
        else:  # a constant default, also a class attribute
            lines.append(f"    v = d.get({wire!r}, _M)")
            lines.append(f"    if v is not _M: {attr} = None if v is None else {conv}")
        single = _single_converter(gen, conv, f"{cls.__module__}.{cls.__qualname__}.{f.name}")
        plan.append((f.name, wire, required, single, tp))
    lines.append("    return o")
    src = "\n".join(lines)
    _exec_source(src, f"{cls.__module__}.{cls.__qualname__}", gen.ns)
    _FIELD_PLANS[cls] = plan
    fn: Decoder = gen.ns[f"decode_{cls.__name__}"]
    fn.__doc__ = f"Generated decoder for {cls.__qualname__}.\n\n{src}"
    return fn


def _single_converter(gen: _Gen, conv: str, name: Optional[str] = None) -> Decoder:
    """One value's conversion as a function; ``name``: registered for tracebacks (once per
    field; the error path's throw-away converters are not, so ``linecache`` stays bounded)."""
    ns = dict(gen.ns)
    _exec_source(f"def _conv(v):\n    return {conv}\n", name, ns)
    return ns["_conv"]  # type: ignore[no-any-return]


def _exec_source(src: str, name: Optional[str], ns: Dict[str, Any]) -> None:
    """Run generated source under a pseudo-filename of its own, registered with ``linecache``
    (unless ``name`` is None) so that tracebacks through the generated code show its lines."""
    if name is None:
        exec(compile(src, "<dydx_ws generated converter>", "exec"), ns)
        return
    filename = f"<dydx_ws generated decoder {name} #{next(_GENERATED)}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    exec(compile(src, filename, "exec"), ns)


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) is Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return tp


def decoder_for(cls: Type[T]) -> Callable[[Any], T]:
    """The generated decoder of a model class (built on first use, then cached)."""
    fn = _DECODERS.get(cls)
    if fn is None:
        fn = _DECODERS[cls] = _compile(cls)
    return fn


def locate_error(cls: type, data: Any, path: str = "") -> Tuple[str, BaseException]:
    """Find which field of ``data`` makes decoding ``cls`` fail: returns (dotted path, error).

    Slow by design; only called after a fast decode raised.
    """
    decoder_for(cls)
    if not isinstance(data, dict):
        return path or "<root>", TypeError(f"expected an object, got {type(data).__name__}")
    for _name, wire, required, conv, tp in _FIELD_PLANS[cls]:
        where = f"{path}.{wire}" if path else wire
        if wire not in data:
            if required:
                return where, KeyError(f"missing required field {wire!r}")
            continue
        value = data[wire]
        try:
            if value is not None:
                conv(value)
        except Exception as exc:
            return _locate_inside(_strip_optional(tp), value, where, _readable(exc, value))
    return path or "<root>", ValueError("could not locate the failing field")


def _locate_inside(
    tp: Any, value: Any, where: str, exc: BaseException
) -> Tuple[str, BaseException]:
    """Descend into nested models, lists and dicts to name the innermost failing element."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return locate_error(tp, value, where)  # type: ignore[arg-type]
    if origin in (list, List) and isinstance(value, list):
        items: Any = ((f"{where}[{i}]", item) for i, item in enumerate(value))
    elif origin in (dict, Dict) and isinstance(value, dict):
        items = ((f"{where}.{key}", item) for key, item in value.items())
    else:
        return where, exc
    item_type = args[-1]
    gen = _Gen()
    convert = _single_converter(gen, gen.expr(item_type, "v"))
    for item_where, item in items:
        try:
            convert(item)
        except Exception as inner:
            return _locate_inside(item_type, item, item_where, _readable(inner, item))
    return where, exc


def _readable(exc: BaseException, value: Any) -> BaseException:
    """Replace errors whose text says nothing (decimal's ``[<class ...>]``) by a plain one."""
    if isinstance(exc, ArithmeticError):
        return ValueError(f"{value!r} is not a decimal number")
    if isinstance(exc, KeyError):
        return exc
    return (
        type(exc)(f"{exc} (value {value!r})") if isinstance(exc, (TypeError, ValueError)) else exc
    )
