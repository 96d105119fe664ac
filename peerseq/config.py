"""Config: dataclasses plus small YAML, with ``key=value`` overrides from the command line.

A config is a tree of dataclasses. ``load_config(cls, yaml_path, overrides)`` reads the YAML (a
mapping), applies the overrides in order, and builds ``cls``, checking every value against its
field annotation. Anything wrong raises ``PeerseqError`` naming where the value came from (the
YAML file or the override) and the dotted path of the key, e.g.
``st.yaml: peers.st.loss.epsilon: expected float, got 'abc'``.

The annotations understood, defaults and field ranges (``bounded()``) are peerseq.typed's.

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

Floats: YAML 1.1 reads ``3e-4`` and ``1e5`` as strings. Here they are floats (as in YAML 1.2),
in files and overrides alike, and ``save_config`` quotes strings that would read back as floats.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from peerseq.errors import PeerseqError
from peerseq.typed import (
    Invalid,
    allows_none,
    build,
    drop_none,
    fields_of,
    fmt_path,
    got,
    is_dataclass_type,
    message,
    plain,
    require_dataclass_type,
    to_dict,
    type_name,
    unknown_key,
)

T = TypeVar("T")

# Exponent floats YAML 1.1 misses: no dot (1e5, 3e-4) or an unsigned exponent (1.0e5).
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """yaml.safe_load plus the exponent floats above."""


class _Dumper(yaml.SafeDumper):
    """yaml.safe_dump that quotes strings _Loader would read back as floats."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def load_config(cls: type[T], yaml_path: str | Path | None, overrides: Iterable[str] = ()) -> T:
    """Build ``cls`` from a YAML file (or nothing) plus ``key=value`` overrides; see module doc."""
    require_dataclass_type(cls)
    data = _read_with_bases(Path(yaml_path), ()) if yaml_path is not None else {}
    from_override: dict[tuple, str] = {}  # path set by an override -> the override
    created: dict[tuple, str] = {}  # dict entry an override created -> the override
    for item in overrides:
        parts = _apply_override(cls, data, item, created)
        from_override[parts] = item
    try:
        return build(cls, data, ())
    except Invalid as e:
        source = str(yaml_path) if yaml_path is not None else None
        for parts, item in from_override.items():  # later overrides win, as when applied
            if e.path[: len(parts)] == parts:
                source = f"override {item!r}"
        if e.missing and e.path[:-1] in created:
            source = f"override {created[e.path[:-1]]!r}"
        raise PeerseqError(message(source, e)) from None


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


def saved_config_changes(instance: Any, path: str | Path) -> list[str]:
    """The dotted keys whose values in ``instance`` differ from the config saved at ``path``
    (by ``save_config``), in file order; [] when they agree. Values are compared as YAML reads
    them back, so tuples and lists, or 1e-3 and 0.001, are equal. A key the saved config lacks
    (one added to peerseq after that run was trained) counts as its default, which by rule is
    the behaviour from before the key existed: a new option never stops an old run resuming."""
    old = _read_yaml(Path(path))
    try:  # the saved config read as the current schema reads it: missing keys get defaults
        old = _as_read(build(type(instance), old, ()))
    except Invalid:  # a key since removed or retyped: compared as written
        pass
    return _changes(old, _as_read(instance), "")


def _as_read(instance: Any) -> Any:
    """The config as YAML reads it back from save_config."""
    return yaml.load(yaml.dump(to_dict(instance), Dumper=_Dumper), Loader=_Loader)


def _changes(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return [c for k in keys for c in _changes(old.get(k), new.get(k), f"{prefix}{k}.")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            c
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for c in _changes(a, b, f"{prefix}{i}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


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
        raise PeerseqError(f"override {item!r}: {fmt_path(parts[:upto])}: {msg}")

    tp, node = cls, data
    walked: list = []  # parts as the built config's paths name them (list indices as int)
    for i, part in enumerate(parts):
        tp = drop_none(tp)
        is_entry = False
        if is_dataclass_type(tp):
            fields = fields_of(tp)
            if part not in fields:
                fail(i + 1, unknown_key(part, fields))
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
            fail(i, f"is {type_name(tp)}, not a mapping")
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
            isinstance(child, list) and typing.get_origin(drop_none(child_tp)) is list
        ):
            fail(i + 1, f"is {got(child)}, not a mapping")
        node[part] = child
        tp, node = child_tp, child
    raise AssertionError("unreachable")


def _override_value(tp: Any, raw: str, item: str) -> Any:
    none_ok = allows_none(tp)
    stringy = drop_none(tp) in (str, Path)
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
    return {} if value is None else plain(value)
