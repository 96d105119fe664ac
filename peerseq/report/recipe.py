"""A recipe's declaration (RECIPE/recipe.yaml): its systems, tables, comparisons, paper numbers,
page layout and training runs, loaded and checked once so that a mistake is reported by file and
field before anything is read or trained.

The declaration stays plain data (dicts and lists from YAML); this module only checks that the
fields the report and reproduce code read exist and have the right types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from peerseq.errors import PeerseqError

REQUIRED = {  # the fields each section kind reads
    "systems": ["metric", "systems", "columns"],
    "other_runs": ["title", "metric", "known", "against", "head", "json"],
    "costs": [
        "title",
        "models",
        "presets",
        "paper_params",
        "reference",
        "reference_label",
        "paper_reduction",
        "head",
        "after",
    ],
    "dev_curves": ["title", "metric", "file", "ylabel", "figure_title", "figures"],
    "repetition": ["title", "systems", "head"],
    "parameters": ["title", "teacher_run", "note"],
    "posteriorgram": ["title", "plain", "em", "file"],
    "loss_curves": ["title", "loss", "file"],
    "sweep": ["title", "run", "default", "axes", "references", "file"],
    "logs": ["title"],
    "claims": ["title", "metric", "claims"],
    "text": ["lines"],
}
COLUMN_KINDS = {
    "label",
    "field",
    "params",
    "score",
    "rate",
    "per_seed",
    "paper",
    "tests",
    "signature",
}


@dataclass
class Recipe:
    """A loaded recipe: its folder, the declaration's file and its data."""

    dir: Path
    file: Path
    data: dict
    systems: dict[str, dict] = field(default_factory=dict)

    def fail(self, where: str, what: str) -> PeerseqError:
        return PeerseqError(f"{self.file}: {where}: {what}")

    @property
    def shared_seed(self) -> int:
        """The seed whose folder holds the runs every seed shares (`reproduce.shared_seed`)."""
        return int(self.data.get("reproduce", {}).get("shared_seed", 1))

    def system(self, key: str, where: str) -> dict:
        if key not in self.systems:
            raise self.fail(where, f"unknown system '{key}' (declared: {', '.join(self.systems)})")
        return self.systems[key]


def _need(rec: Recipe, d: dict, key: str, kind: type | tuple, where: str):
    if not isinstance(d, dict) or key not in d:
        raise rec.fail(where, f"missing field '{key}'")
    value = d[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise rec.fail(f"{where}.{key}", f"expected {names}, got {type(value).__name__}")
    return value


def load_recipe(folder: str | Path) -> Recipe:
    """RECIPE/recipe.yaml, checked: systems (run, peer, label), page sections and their columns,
    every system a table or comparison names; the runs reproduce trains (see reproduce.py)."""
    folder = Path(folder)
    file = folder / "recipe.yaml" if folder.is_dir() else folder
    if not file.is_file():
        raise PeerseqError(f"{file}: no recipe declaration (recipe.yaml) here")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise PeerseqError(f"{file}: not valid YAML: {e}") from None
    rec = Recipe(file.parent, file, data if isinstance(data, dict) else {})
    if not isinstance(data, dict):
        raise rec.fail("top level", "expected a mapping")
    _need(rec, data, "name", str, "top level")
    systems = data.get("systems", {})
    if not isinstance(systems, dict):
        raise rec.fail("systems", "expected a mapping of system key -> {run, peer, label}")
    for key, s in systems.items():
        for f in ("run", "label"):
            _need(rec, s, f, str, f"systems.{key}")
        if "peer" in s and not isinstance(s["peer"], str | None):
            raise rec.fail(f"systems.{key}.peer", "expected a peer name")
        if not isinstance(s.get("shared", False), bool):  # one run every seed shares
            raise rec.fail(f"systems.{key}.shared", "expected true or false")
    rec.systems = systems
    page = _need(rec, data, "page", dict, "top level")
    _need(rec, page, "header", list, "page")
    groups = _need(rec, page, "groups", list, "page")
    for i, g in enumerate(groups):
        where = f"page.groups[{i}]"
        _need(rec, g, "glob", str, where)
        for j, sec in enumerate(_need(rec, g, "sections", list, where)):
            _check_section(rec, sec, f"{where}.sections[{j}]")
    runs = data.get("runs", {})
    if not isinstance(runs, dict):
        raise rec.fail("runs", "expected a mapping of run name -> {config, ...}")
    seen: list[str] = []
    for name, r in runs.items():
        if not isinstance(r, dict) or r.get("kind") != "cascade":
            _need(rec, r, "config", str, f"runs.{name}")
            if not (rec.dir / f"{r['config']}.yaml").is_file():
                raise rec.fail(f"runs.{name}.config", f"no {r['config']}.yaml in {rec.dir}")
        for dep in r.get("after", []) + r.get("teachers", []):
            if dep not in seen:  # declaration order is training order
                raise rec.fail(f"runs.{name}.after", f"'{dep}' is not a run declared before it")
        seen.append(name)
    if runs:
        spec = _need(rec, data, "reproduce", dict, "top level")
        _need(rec, spec, "layout", str, "reproduce")
        _need(rec, spec, "scales", list, "reproduce")
        for m, names in _need(rec, spec, "methods", dict, "reproduce").items():
            for n in names:
                if n not in runs:
                    raise rec.fail(f"reproduce.methods.{m}", f"unknown run '{n}'")
    return rec


def _check_section(rec: Recipe, sec: dict, where: str) -> None:
    kind = _need(rec, sec, "kind", str, where)
    if kind not in REQUIRED:
        raise rec.fail(f"{where}.kind", f"unknown '{kind}' (one of {', '.join(sorted(REQUIRED))})")
    for f in REQUIRED[kind]:
        if f not in sec:
            raise rec.fail(where, f"missing field '{f}' (a {kind} section)")
    for key in sec.get("systems", []) if kind == "repetition" else []:
        rec.system(key, f"{where}.systems")
    for name, keys in sec.get("figures", {}).items():
        for key in keys:
            rec.system(key, f"{where}.figures.{name}")
    for model, key in sec.get("models", {}).items():
        rec.system(key, f"{where}.models.{model}")
    for i, c in enumerate(sec.get("claims", []) if kind == "claims" else []):
        for f in ("id", "paper", "claim", "method", "baseline"):
            _need(rec, c, f, str, f"{where}.claims[{i}]")
        for k in [c["method"], c["baseline"]] + [k for pair in c.get("requires", []) for k in pair]:
            rec.system(k, f"{where}.claims[{i}]")
    if kind != "systems":
        return
    _need(rec, sec, "metric", str, where)
    for key in _need(rec, sec, "systems", list, where):
        rec.system(key, f"{where}.systems")
    for i, col in enumerate(_need(rec, sec, "columns", list, where)):
        ck = _need(rec, col, "kind", str, f"{where}.columns[{i}]")
        if ck not in COLUMN_KINDS:
            raise rec.fail(
                f"{where}.columns[{i}].kind", f"unknown '{ck}' ({', '.join(sorted(COLUMN_KINDS))})"
            )
        if ck == "paper":
            values = _need(rec, col, "values", dict, f"{where}.columns[{i}]")
            for k in values:
                rec.system(k, f"{where}.columns[{i}].values")
        if ck == "tests":
            for k, bases in col.get("against", {}).items():
                rec.system(k, f"{where}.columns[{i}].against")
                for b in bases:
                    rec.system(b, f"{where}.columns[{i}].against.{k}")
            if "ours" in col:
                rec.system(col["ours"], f"{where}.columns[{i}].ours")
