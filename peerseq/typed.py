"""Plain data (YAML, JSON) to typed dataclasses and back, checked on the way in.

Annotations understood: int, float (an int is accepted), bool (nothing is coerced to it), str,
Path, Literal[...], Optional[X] / ``X | None``, other unions (first match wins), list[X],
tuple[X, ...] / tuple[X, Y], dict[str, X], nested dataclasses and Any. Fields with a default may
be left out; a missing required field, an unknown key (with the nearest known one suggested) or a
value of the wrong type is an error naming its dotted path. Annotations are resolved with
``typing.get_type_hints``, so dataclasses that use ``from __future__ import annotations`` must be
defined at module level.

Ranges: a field's metadata may bound it, checked when the dataclass is built, before any work:
``ge``/``gt``/``le``/``lt`` for a number (each item of a list), ``pattern`` (a regex the whole
text must match) for a string; ``None`` passes where the annotation allows it. ``bounded()``
makes such a field. Floats must be finite (``.nan``, ``.inf`` are refused everywhere).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar, Union

from peerseq.errors import PeerseqError

T = TypeVar("T")


class Invalid(Exception):
    """A bad value at a path; turned into a PeerseqError once its source is known."""

    def __init__(self, path: tuple, msg: str, missing: bool = False):
        super().__init__(msg)
        self.path, self.msg, self.missing = path, msg, missing


def bounded(
    default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **limits: Any
) -> Any:
    """A dataclass field whose value is checked against `limits` (ge, gt, le, lt, pattern)."""
    unknown = set(limits) - set(_LIMITS) - {"pattern"}
    if unknown:
        raise TypeError(f"bounded: unknown limit(s) {sorted(unknown)}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata=limits)


def from_dict(cls: type[T], data: Any, *, source: str | None = None) -> T:
    """Build ``cls`` from plain dicts/lists, checked as load_config does; ``source`` prefixes
    error messages."""
    require_dataclass_type(cls)
    try:
        return build(cls, data, ())
    except Invalid as e:
        raise PeerseqError(message(source, e)) from None


def to_dict(instance: Any) -> dict:
    """The config as plain YAML-ready data: Paths as str, tuples as lists."""
    if not dataclasses.is_dataclass(instance) or isinstance(instance, type):
        raise TypeError(f"to_dict expects a dataclass instance, got {type(instance).__name__}")
    return plain(instance)


# ---- building and checking ----------------------------------------------------------------


def build(cls: type, value: Any, path: tuple) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise Invalid(path, f"expected a mapping ({cls.__name__}), got {got(value)}")
    fields = fields_of(cls)
    kwargs = {}
    for key, v in value.items():
        if key not in fields:
            raise Invalid(path + (str(key),), unknown_key(key, fields))
        kwargs[key] = _convert(fields[key][0], v, path + (key,))
        _check_limits(fields[key][1].metadata, kwargs[key], path + (key,))
    for name, (tp, f) in fields.items():
        if name not in kwargs and f.default is f.default_factory is dataclasses.MISSING:
            raise Invalid(path + (name,), f"missing required field ({type_name(tp)})", True)
    try:
        return cls(**kwargs)
    except ValueError as e:  # a __post_init__ check
        raise Invalid(path, str(e)) from None


def _convert(tp: Any, value: Any, path: tuple) -> Any:
    if tp is Any:
        return value
    if is_dataclass_type(tp):
        return build(tp, value, path)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own, more precise error
            return _convert(options[0], value, path)
        for option in options:
            try:
                return _convert(option, value, path)
            except Invalid:
                pass
    elif origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise Invalid(path, f"expected a finite number, got {value}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, PurePath) or (isinstance(value, str) and value):
            return Path(value)
    elif tp is type(None):
        if value is None:
            return None
    elif origin is list or tp is list:
        if isinstance(value, (list, tuple)):
            item = args[0] if args else Any
            return [_convert(item, v, path + (i,)) for i, v in enumerate(value)]
    elif origin is tuple or tp is tuple:
        if isinstance(value, (list, tuple)):
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                item = args[0] if args else Any
                return tuple(_convert(item, v, path + (i,)) for i, v in enumerate(value))
            if len(value) != len(args):
                raise Invalid(path, f"expected {len(args)} items, got {len(value)}")
            return tuple(
                _convert(a, v, path + (i,))
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            key_tp, value_tp = args or (Any, Any)
            out = {}
            for k, v in value.items():
                try:
                    k2 = _convert(key_tp, k, path)
                except Invalid as e:
                    raise Invalid(path + (str(k),), f"bad key: {e.msg}") from None
                out[k2] = _convert(value_tp, v, path + (k2,))
            return out
    elif origin is None and isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"peerseq.typed does not support the annotation {tp!r} ({fmt_path(path)})")
    raise Invalid(path, f"expected {type_name(tp)}, got {got(value)}")


_LIMITS = {
    "ge": (lambda v, x: v >= x, ">="),
    "gt": (lambda v, x: v > x, ">"),
    "le": (lambda v, x: v <= x, "<="),
    "lt": (lambda v, x: v < x, "<"),
}


def _check_limits(limits: Any, value: Any, path: tuple) -> None:
    """A field's range (see module doc); each item of a list or tuple is checked."""
    if not limits or value is None:
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_limits(limits, v, path + (i,))
        return
    pattern = limits.get("pattern")
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern, value):
        raise Invalid(path, f"expected text matching {pattern}, got {value!r}")
    wanted = [(k, x) for k, x in limits.items() if k in _LIMITS]
    if not wanted or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if not all(_LIMITS[k][0](value, x) for k, x in wanted):
        expected = " and ".join(f"{_LIMITS[k][1]} {x}" for k, x in wanted)
        raise Invalid(path, f"expected a value {expected}, got {value}")


@functools.cache
def fields_of(cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """Settable fields of a config dataclass: name -> (resolved annotation, field)."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError as e:
        raise TypeError(
            f"cannot resolve the annotations of {cls.__qualname__} ({e}); "
            "define config dataclasses at module level"
        ) from e
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls) if f.init}


def plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# ---- small helpers ------------------------------------------------------------------------


def is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def require_dataclass_type(cls: Any) -> None:
    if not is_dataclass_type(cls):
        raise TypeError(f"expected a dataclass type, got {cls!r}")


def allows_none(tp: Any) -> bool:
    return tp is Any or (
        typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)
    )


def drop_none(tp: Any) -> Any:
    """Optional[X] -> X; anything else unchanged."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def unknown_key(key: Any, fields: dict) -> str:
    close = difflib.get_close_matches(str(key), list(fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (known: {', '.join(fields)})"


def type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def got(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text if isinstance(value, str) else f"{text} ({type(value).__name__})"


def fmt_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def message(source: str | None, e: Invalid) -> str:
    return f"{source + ': ' if source else ''}{fmt_path(e.path)}: {e.msg}"
