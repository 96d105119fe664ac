"""Config: dataclasses plus small YAML, with ``key=value`` overrides from the command line.

A config is a tree of dataclasses. ``load_config(cls, yaml_path, overrides)`` reads the YAML (a
mapping), applies the overrides in order, and builds ``cls``, checking every value against its
field annotation. Anything wrong raises ``PeerseqError`` naming where the value came from (the
YAML file or the override) and the dotted path of the key, e.g.
``st.yaml: peers.st.loss.epsilon: expected float, got 'abc'``.

Annotations understood: int, float (an int is accepted), bool (nothing is coerced to it), str,
Path, Literal[...], Optional[X] / ``X | None``, other unions (first match wins), list[X],
tuple[X, ...] / tuple[X, Y], dict[str, X], nested dataclasses and Any. Fields with a default may
be left out; a missing required field is an error naming its path. Annotations are resolved with
``typing.get_type_hints``, so config dataclasses that use ``from __future__ import annotations``
must be defined at module level.

Overrides, ``a.b.c=value``:
- the value is parsed as YAML (``3e-4``, ``true``, ``[1, 2]``, ``null``, ``{k: v}``), except
  that for a str or Path field text YAML would read as another type is kept as written
  (``name=001`` gives ``'001'``, not ``1``);
- an override edits the resolved config: when the YAML leaves a dataclass or dict field out, its
  default is filled in first, so ``peers.asr.lr=0.1`` edits the default ``asr`` peer;
- in a ``dict[str, X]`` field a new key may be created (``peers.new.model=conformer``); that entry
  is then built from the overrides alone, so they must give every required field of X;
- assigning a whole value (``seeds=[1, 2]``, ``peers.st={model: x}``) replaces it, no merging;
  dict keys that contain a dot cannot be addressed;
- an item of a list the config holds is addressed by its index: ``links.0.C=200``.

Inheritance: a YAML file may name others under a top-level ``base:`` key (a path or a list,
relative to the file). Their mappings are merged first, in order, then the file's own keys on
top, recursively for mappings (a list or a scalar replaces). A recipe keeps its data and
optimiser settings in one file and each method in a short one, as fairseq and ESPnet recipes do.

Ranges: a field's metadata may bound it, checked when the config is built, before any work:
``ge``/``gt``/``le``/``lt`` for a number (each item of a list), ``pattern`` (a regex the whole
text must match) for a string; ``None`` passes where the annotation allows it. ``bounded()``
makes such a field. Floats must be finite (``.nan``, ``.inf`` are refused everywhere).

Floats: YAML 1.1 reads ``3e-4`` and ``1e5`` as strings. Here they are floats (as in YAML 1.2),
in files and overrides alike, and ``save_config`` quotes strings that would read back as floats.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar, Union

import yaml

from peerseq.errors import PeerseqError

__all__ = ["bounded", "from_dict", "load_config", "save_config", "to_dict"]

T = TypeVar("T")

# Exponent floats YAML 1.1 misses: no dot (1e5, 3e-4) or an unsigned exponent (1.0e5).
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """yaml.safe_load plus the exponent floats above."""


class _Dumper(yaml.SafeDumper):
    """yaml.safe_dump that quotes strings _Loader would read back as floats."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


class _Invalid(Exception):
    """A bad value at a path; turned into a PeerseqError once its source is known."""

    def __init__(self, path: tuple, msg: str, missing: bool = False):
        super().__init__(msg)
        self.path, self.msg, self.missing = path, msg, missing


# ---- public API ---------------------------------------------------------------------------


def bounded(
    default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **limits: Any
) -> Any:
    """A dataclass field whose value is checked against `limits` (ge, gt, le, lt, pattern)."""
    unknown = set(limits) - set(_LIMITS) - {"pattern"}
    if unknown:
        raise TypeError(f"bounded: unknown limit(s) {sorted(unknown)}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata=limits)


def load_config(cls: type[T], yaml_path: str | Path | None, overrides: Iterable[str] = ()) -> T:
    """Build ``cls`` from a YAML file (or nothing) plus ``key=value`` overrides; see module doc."""
    _require_dataclass_type(cls)
    data = _read_with_bases(Path(yaml_path), ()) if yaml_path is not None else {}
    from_override: dict[tuple, str] = {}  # path set by an override -> the override
    created: dict[tuple, str] = {}  # dict entry an override created -> the override
    for item in overrides:
        parts = _apply_override(cls, data, item, created)
        from_override[parts] = item
    try:
        return _build(cls, data, ())
    except _Invalid as e:
        source = str(yaml_path) if yaml_path is not None else None
        for parts, item in from_override.items():  # later overrides win, as when applied
            if e.path[: len(parts)] == parts:
                source = f"override {item!r}"
        if e.missing and e.path[:-1] in created:
            source = f"override {created[e.path[:-1]]!r}"
        raise PeerseqError(_message(source, e)) from None


def from_dict(cls: type[T], data: Any, *, source: str | None = None) -> T:
    """Build ``cls`` from plain dicts/lists, checked as load_config does; ``source`` prefixes
    error messages."""
    _require_dataclass_type(cls)
    try:
        return _build(cls, data, ())
    except _Invalid as e:
        raise PeerseqError(_message(source, e)) from None


def to_dict(instance: Any) -> dict:
    """The config as plain YAML-ready data: Paths as str, tuples as lists."""
    if not dataclasses.is_dataclass(instance) or isinstance(instance, type):
        raise TypeError(f"to_dict expects a dataclass instance, got {type(instance).__name__}")
    return _plain(instance)


def save_config(instance: Any, path: str | Path) -> None:
    """Write the resolved config as YAML; ``load_config(type(instance), path, [])`` reads it
    back equal."""
    text = yaml.dump(
        to_dict(instance),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---- reading ------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PeerseqError(f"{path}: cannot read config: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise PeerseqError(f"{path}: config is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or " ".join(str(e).split())
        raise PeerseqError(f"{where}: not valid YAML: {problem}") from None
    if data is None:  # an empty file: all defaults
        return {}
    if not isinstance(data, dict):
        raise PeerseqError(
            f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}"
        )
    return data


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict:
    """The file's mapping merged over the mappings of its ``base:`` files (see module doc)."""
    path = path.resolve()
    if path in chain:
        loop = " -> ".join(str(p) for p in (*chain, path))
        raise PeerseqError(f"{chain[-1]}: base: files include each other ({loop})")
    data = _read_yaml(path)
    bases = data.pop("base", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise PeerseqError(f"{path}: base: expected a path or a list of paths, got {bases!r}")
    merged: dict = {}
    for base in bases:
        base_path = path.parent / base
        if not base_path.is_file():
            raise PeerseqError(f"{path}: base: {base}: no such file ({base_path})")
        merged = _merge(merged, _read_with_bases(base_path, (*chain, path)))
    return _merge(merged, data)


def _merge(under: dict, over: dict) -> dict:
    """``over`` on top of ``under``: mappings merge key by key, anything else replaces."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _apply_override(cls: type, data: dict, item: str, created: dict[tuple, str]) -> tuple:
    """Set one ``a.b.c=value`` in the raw ``data``, walking the annotations of ``cls``."""
    key, sep, raw = item.partition("=")
    parts = tuple(p.strip() for p in key.split("."))
    if not sep or not all(parts):
        raise PeerseqError(f"override {item!r}: expected key=value, e.g. optim.lr=3e-4")

    def fail(upto: int, msg: str) -> typing.NoReturn:
        raise PeerseqError(f"override {item!r}: {_fmt(parts[:upto])}: {msg}")

    tp, node = cls, data
    walked: list = []  # parts as the built config's paths name them (list indices as int)
    for i, part in enumerate(parts):
        tp = _drop_none(tp)
        is_entry = False
        if _is_dataclass_type(tp):
            fields = _fields(tp)
            if part not in fields:
                fail(i + 1, _unknown_key(part, fields))
            child_tp, f = fields[part]
        elif typing.get_origin(tp) is dict or tp is dict or tp is Any:
            args = typing.get_args(tp)
            child_tp, f, is_entry = (args[1] if args else Any), None, True
        elif typing.get_origin(tp) is list and isinstance(node, list):
            # an item of a list the config already has: links.0.weight=0.5
            if not part.isdigit() or int(part) >= len(node):
                fail(i + 1, f"expected an index below {len(node)} of the list")
            part, child_tp, f = int(part), typing.get_args(tp)[0], None
        else:
            fail(i, f"is {_name(tp)}, not a mapping")
        walked.append(part)
        if i == len(parts) - 1:
            node[part] = _override_value(child_tp, raw, item)
            return tuple(walked)
        child = node[part] if isinstance(node, list) else node.get(part)
        if child is None:
            child = {} if f is None else _default_plain(f)
            if is_entry:
                created[tuple(walked)] = item
        if not isinstance(child, dict) and not (
            isinstance(child, list) and typing.get_origin(_drop_none(child_tp)) is list
        ):
            fail(i + 1, f"is {_got(child)}, not a mapping")
        node[part] = child
        tp, node = child_tp, child
    raise AssertionError("unreachable")


def _override_value(tp: Any, raw: str, item: str) -> Any:
    none_ok = _allows_none(tp)
    stringy = _drop_none(tp) in (str, Path)
    try:
        value = yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError:
        if not stringy:
            raise PeerseqError(f"override {item!r}: value is not valid YAML") from None
        value = raw
    if stringy and not isinstance(value, str) and not (value is None and none_ok):
        return raw.strip()  # name=001 means the text '001', not the int 1
    return value


def _default_plain(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    elif f.default is not dataclasses.MISSING:
        value = f.default
    else:
        value = None
    return {} if value is None else _plain(value)


# ---- building and checking ----------------------------------------------------------------


def _build(cls: type, value: Any, path: tuple) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise _Invalid(path, f"expected a mapping ({cls.__name__}), got {_got(value)}")
    fields = _fields(cls)
    kwargs = {}
    for key, v in value.items():
        if key not in fields:
            raise _Invalid(path + (str(key),), _unknown_key(key, fields))
        kwargs[key] = _convert(fields[key][0], v, path + (key,))
        _check_limits(fields[key][1].metadata, kwargs[key], path + (key,))
    for name, (tp, f) in fields.items():
        if name not in kwargs and f.default is f.default_factory is dataclasses.MISSING:
            raise _Invalid(path + (name,), f"missing required field ({_name(tp)})", True)
    try:
        return cls(**kwargs)
    except ValueError as e:  # a __post_init__ check
        raise _Invalid(path, str(e)) from None


def _convert(tp: Any, value: Any, path: tuple) -> Any:
    if tp is Any:
        return value
    if _is_dataclass_type(tp):
        return _build(tp, value, path)
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
            except _Invalid:
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
                raise _Invalid(path, f"expected a finite number, got {value}")
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
                raise _Invalid(path, f"expected {len(args)} items, got {len(value)}")
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
                except _Invalid as e:
                    raise _Invalid(path + (str(k),), f"bad key: {e.msg}") from None
                out[k2] = _convert(value_tp, v, path + (k2,))
            return out
    elif origin is None and isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"peerseq.config does not support the annotation {tp!r} ({_fmt(path)})")
    raise _Invalid(path, f"expected {_name(tp)}, got {_got(value)}")


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
        raise _Invalid(path, f"expected text matching {pattern}, got {value!r}")
    wanted = [(k, x) for k, x in limits.items() if k in _LIMITS]
    if not wanted or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if not all(_LIMITS[k][0](value, x) for k, x in wanted):
        expected = " and ".join(f"{_LIMITS[k][1]} {x}" for k, x in wanted)
        raise _Invalid(path, f"expected a value {expected}, got {value}")


@functools.cache
def _fields(cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """Settable fields of a config dataclass: name -> (resolved annotation, field)."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError as e:
        raise TypeError(
            f"cannot resolve the annotations of {cls.__qualname__} ({e}); "
            "define config dataclasses at module level"
        ) from e
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls) if f.init}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---- small helpers ------------------------------------------------------------------------


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _require_dataclass_type(cls: Any) -> None:
    if not _is_dataclass_type(cls):
        raise TypeError(f"expected a dataclass type, got {cls!r}")


def _allows_none(tp: Any) -> bool:
    return tp is Any or (
        typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)
    )


def _drop_none(tp: Any) -> Any:
    """Optional[X] -> X; anything else unchanged."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def _unknown_key(key: Any, fields: dict) -> str:
    close = difflib.get_close_matches(str(key), list(fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (known: {', '.join(fields)})"


def _name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def _got(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text if isinstance(value, str) else f"{text} ({type(value).__name__})"


def _fmt(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _message(source: str | None, e: _Invalid) -> str:
    return f"{source + ': ' if source else ''}{_fmt(e.path)}: {e.msg}"
