"""A declared table of systems (run + peer + label) scored on the test split over seeds: the
columns a recipe's tables are made of (scores, a second metric, parameters, the paper's numbers,
paired bootstrap tests) and the JSON record of each system, as declared in recipe.yaml.

A group is one folder of seed directories (OUT/.../sSEED/RUN); a system's outputs are the decoded
test set of each seed, at the recipe's `outputs` pattern (or the system's own).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peerseq.decoding.outputs import read_outputs
from peerseq.report.compare import (
    Paired,
    SystemScores,
    compare,
    fmt_score,
    fmt_tests,
    markdown_table,
    score_system,
)
from peerseq.report.recipe import Recipe
from peerseq.rundir.layout import RunDir


@dataclass
class Group:
    """One folder of seed directories and what the page says about it."""

    name: str
    dir: Path
    seeds: dict[int, Path]
    vars: dict = field(default_factory=dict)  # scale, root, corpus, group, stem, figdir, ...


# a system's decoded test set, relative to its seed folder, unless the recipe says otherwise
DEFAULT_OUTPUTS = str(RunDir("{run}").outputs("{peer}", "test"))


def outputs(rec: Recipe, g: Group, key: str, spread: bool = False) -> dict[int, Path]:
    """{seed: decoded test set} of a declared system (files may be missing).

    A system declared `shared: true` is one run that every seed shares (trained once, in the
    shared seed's folder: a pre-trained peer, a cascade of two): its one output, under the
    shared seed, or with `spread` under every seed of the group, so that each seed of a method
    is paired with it in a test."""
    s = rec.systems[key]
    pattern = s.get("outputs") or rec.data.get("outputs", DEFAULT_OUTPUTS)
    rel = pattern.format(run=s["run"], peer=s.get("peer"))
    if s.get("shared"):
        home = rec.shared_seed
        if home not in g.seeds:
            return {}
        return {seed: g.seeds[home] / rel for seed in (g.seeds if spread else [home])}
    return {seed: d / rel for seed, d in g.seeds.items()}


def present(rec: Recipe, g: Group, key: str) -> bool:
    return any(p.is_file() for p in outputs(rec, g, key).values())


def rate(path: Path, metric: str) -> float:
    """A second corpus metric of one decoded set, in file order (CER, or chrF's score)."""
    from peerseq.metrics.asr import cer
    from peerseq.metrics.bleu import chrf

    rows = read_outputs(path)
    refs, hyps = [r for _, r in rows.values()], [h for h, _ in rows.values()]
    return cer(refs, hyps) if metric == "cer" else chrf(refs, hyps)[0]


def fmt_seeds(per_seed: dict[int, float]) -> str:
    if not per_seed:
        return "—"
    v = list(per_seed.values())
    return f"{np.mean(v):.2f}" + (f" ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else "")


def _tests_json(tests: list[Paired], short: bool) -> list[dict]:
    if short:
        return [{"seed": t.seed, "delta": round(t.delta, 2), "p": t.p_value} for t in tests]
    return [t.__dict__ for t in tests]


def export_params(g: Group, run: str) -> int | None:
    """Parameters of a run's export (export.json), from the first seed that has one."""
    for d in g.seeds.values():
        f = RunDir(RunDir(d / run).export).export_record
        if f.is_file():
            return json.loads(f.read_text())["parameters"]
    return None


def params_of(rec: Recipe, g: Group, key: str, source: str) -> int | None:
    if source == "export":
        return export_params(g, rec.systems[key]["run"])
    from peerseq.report.costs import config_params  # builds paper-003 models from a config

    s = rec.systems[key]
    return config_params([d / s["run"] for d in g.seeds.values()], s["peer"])


def _cell(rec: Recipe, g: Group, sec: dict, col: dict, key: str, s: SystemScores, memo: dict):
    """(cell text or None for a JSON-only column, JSON value) of one column for one system."""
    kind, sysd = col["kind"], rec.systems[key]
    outs = outputs(rec, g, key)
    if kind == "label":
        return sysd["label"], None
    if kind == "field":
        return None, sysd.get(col["name"])
    if kind == "score":
        if col.get("metric", sec["metric"]) != sec["metric"]:
            s = score_system(key, outs, col["metric"])
        return fmt_score(s), s.to_json()
    if kind == "signature":
        return None, s.signature
    if kind == "per_seed":
        text = ", ".join(f"s{k}: {v:.2f}" for k, v in sorted(s.scores.items()))
        return text or col.get("empty", "not run"), None
    if kind == "rate":
        per = {seed: rate(p, col["metric"]) for seed, p in outs.items() if p.is_file()}
        return fmt_seeds(per), {str(k): round(v, 2) for k, v in per.items()}
    if kind == "params":
        source = col.get("source", "export")
        p = params_of(rec, g, key, source)
        text = f"{p / 1e6:.2f} M" if p else "—"
        base = col.get("relative_to")
        if base and p and key != base:
            if base not in memo:
                memo[base] = params_of(rec, g, base, source)
            if memo[base]:
                text += f" ({100 * p / memo[base]:.1f}%)"
        return text, p
    if kind == "paper":
        v = col["values"].get(key)
        if isinstance(v, list):
            v = v[col.get("index", 0)]
        return (col.get("format", "{}").format(v) if v is not None else col.get("missing", "—")), v
    if kind == "tests":
        return _tests_cell(rec, g, sec, col, key)
    raise ValueError(kind)


def _tests_cell(rec: Recipe, g: Group, sec: dict, col: dict, key: str):
    """Paired bootstrap tests: the system against each of its declared baselines (`against`),
    or the recipe's own method (`ours`) against the row's system."""
    metric = col.get("metric", sec["metric"])
    short, empty = col.get("json_format") == "short", col.get("empty", "—")
    outs = outputs(rec, g, key, spread=True)  # a shared system against each seed of the other
    if "ours" in col:
        skip = col.get("skip", [col["ours"]])
        ours = outputs(rec, g, col["ours"], spread=True)
        tests = compare(ours, outs, metric) if key not in skip else []
        return (fmt_tests(tests, metric) if tests else empty), _tests_json(tests, short)
    tests = {
        b: compare(outs, outputs(rec, g, b, spread=True), metric)
        for b in col.get("against", {}).get(key, [])
        if present(rec, g, b)
    }
    shown = "; ".join(
        f"vs {rec.systems[b]['label']}: {fmt_tests(t, metric)}" for b, t in tests.items() if t
    )
    return shown or empty, {b: _tests_json(t, short) for b, t in tests.items()}


def systems_table(rec: Recipe, g: Group, sec: dict) -> tuple[list[str], object] | None:
    """A declared table -> (Markdown lines, JSON), or None when the section's `only_if_beyond`
    systems are all it would show (e.g. a multi-teacher table with no multi-teacher run)."""
    metric, memo = sec["metric"], {}
    rows, records, scored = [], {}, []
    for key in sec["systems"]:
        if sec.get("missing", "skip") == "skip" and not present(rec, g, key):
            continue
        s = score_system(key, outputs(rec, g, key), metric)
        scored.append(s)
        row, record = [], {}
        for col in sec["columns"]:
            text, value = _cell(rec, g, sec, col, key, s, memo)
            if text is not None:
                row.append(text)
            if col.get("json") == ".":
                record |= value
            elif col.get("json"):
                record[col["json"]] = value
        rows.append(row)
        if "json_order" in sec:  # the record's keys in this order, whatever the columns' order
            record = {k: record[k] for k in sec["json_order"]}
        name = {"key": key, "run": rec.systems[key]["run"], "label": rec.systems[key]["label"]}
        records[name[sec.get("json_key", "key")]] = record
    if "only_if_beyond" in sec and not set(records) - set(sec["only_if_beyond"]):
        return None
    head = [c["head"] for c in sec["columns"] if c["kind"] not in ("field", "signature")]
    head = [h.format(**g.vars) for h in head]
    table = markdown_table(head, rows)
    signature = next((s.signature for s in scored if s.signature), "")
    n = next((s.n for s in scored if s.n), 0)
    if "note" in sec:
        ours = next((rec.systems[c["ours"]]["label"] for c in sec["columns"] if "ours" in c), "")
        table += sec["note"].format(n=n, signature=signature, ours=ours, **g.vars)
    md = ([sec["title"].format(**g.vars) + "\n"] if "title" in sec else []) + [table]
    if sec.get("blank_after", True):
        md.append("")
    if sec.get("json_wrap"):
        return md, {"signature": signature, "n": n, "systems": records}
    return md, records


def other_runs(rec: Recipe, g: Group, sec: dict) -> tuple[list[str], dict]:
    """Runs beside the declared ones (variations trained by hand into a seed directory): each
    decoded peer's score, tested against the same peer of each `against` run."""
    metric, known = sec["metric"], set(sec["known"])
    skip = re.compile(sec.get("exclude", "(?!)"))
    if sec.get("discover", "dirs") == "dirs":
        found = {p.name for d in g.seeds.values() for p in d.iterdir() if p.is_dir()}
    else:  # runs with a decoded test set
        found = {
            run.name
            for d in g.seeds.values()
            for run in d.iterdir()
            if any(RunDir(run).eval.glob("*.test.jsonl"))
        }
    pattern = rec.data.get("outputs", DEFAULT_OUTPUTS)

    def outs(run: str, peer: str) -> dict[int, Path]:
        return {s: d / pattern.format(run=run, peer=peer) for s, d in g.seeds.items()}

    rows, data = [], {}
    for name in sorted(n for n in found - known if not skip.fullmatch(n)):
        for peer in sec.get("peers", ["seq"]):
            mine = outs(name, peer)
            s = score_system(name, mine, metric)
            if not s.scores:
                continue
            tests = {k: compare(mine, outs(run, peer), metric) for k, run in sec["against"].items()}
            label = sec.get("label", "{run}").format(run=name, peer=peer)
            rows.append(
                [label]
                + ([peer] if sec.get("show_peer") else [])
                + [fmt_score(s)]
                + [fmt_tests(t, metric) for t in tests.values()]
            )
            short = sec.get("json_format") == "short"
            tj = {k: _tests_json(t, short) for k, t in tests.items()}
            key = sec.get("json_name", "{run}").format(run=name, peer=peer)
            data[key] = (
                (s.to_json() | tj) if sec.get("json_score") == "." else {metric: s.to_json()} | tj
            )
    if not rows:
        return [], {}
    head = [h.format(metric=metric.upper(), **g.vars) for h in sec["head"]]
    md = [sec["title"].format(**g.vars) + "\n", markdown_table(head, rows) + sec.get("after", "")]
    return md + ([""] if sec.get("blank_after", True) else []), data
