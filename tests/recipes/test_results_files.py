"""Every committed recipes/*/results.json agrees with its results.md: each system's mean (± sd)
and each paired test (gain, p-value, seed) in the JSON appears, formatted as the report formats
it, in a row of that system's label in the page, for every system table the recipe declares."""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path

import pytest

from peerseq.report.recipe import Recipe, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _groups(rec: Recipe, data: dict):
    """(group declaration, group JSON) for every group the JSON holds."""
    for gd in rec.data["page"]["groups"]:
        nodes = [data]
        for part in gd.get("json_path", []):
            pattern = part.format(group="*")
            nodes = [v for n in nodes for k, v in n.items() if fnmatch.fnmatch(k, pattern)]
        yield from ((gd, n) for n in nodes)


def _expected(sec: dict, record: dict) -> list[str]:
    """The strings a system's row must contain: its scores and its paired tests."""
    out = []
    for col in sec["columns"]:
        value = record if col.get("json") == "." else record.get(col.get("json"))
        if col["kind"] == "score" and value and value["mean"] is not None:
            sd = f" ± {value['std']:.2f}" if value["std"] is not None else ""
            out.append(f"{value['mean']:.2f}{sd}")
        if col["kind"] == "tests" and value:
            sign = 1 if col.get("metric", sec["metric"]) in ("bleu", "chrf") else -1
            tests = value if isinstance(value, list) else [t for v in value.values() for t in v]
            for t in tests:
                p = t.get("p_value", t.get("p"))
                out.append(f"{sign * t['delta']:+.2f} (p={p:.3f}, s{t['seed']})")
    return out


def mismatches(rec: Recipe, md: str, data: dict) -> list[str]:
    """What the JSON says that no row of the page shows; [] when they agree."""
    lines, bad, checked = md.splitlines(), [], 0
    for gd, group in _groups(rec, data):
        for sec in gd["sections"]:
            if sec["kind"] != "systems" or sec["json"] not in group:
                continue
            table = group[sec["json"]]
            table = table["systems"] if sec.get("json_wrap") else table
            for name, record in table.items():
                mode = sec.get("json_key", "key")
                key = next(k for k in sec["systems"] if name == (rec.systems[k] | {"key": k})[mode])
                label = rec.systems[key]["label"]
                rows = [x for x in lines if x.startswith(f"| {label} |")]
                # a system not scored (not run yet) shows "—" in the score cell after its label
                want = _expected(sec, record) or [f"| {label} | — |"]
                checked += len(want)
                if not any(all(w in row for w in want) for row in rows):
                    bad.append(f"{sec['json']}/{name}: {want} not in a '{label}' row")
    assert checked > 0, "nothing was compared"
    return bad


@pytest.mark.parametrize("recipe", ["mlkd", "em_network", "st_mutual"])
def test_results_json_agrees_with_results_md(recipe):
    rec = load_recipe(RECIPES / recipe)
    md = (RECIPES / recipe / "results.md").read_text()
    data = json.loads((RECIPES / recipe / "results.json").read_text())
    if not any(_groups(rec, data)):  # a page being rebuilt, before its first run: it says so
        assert "No runs found under" in md and not data.get("claims")
        assert not any(v for k, v in data.items() if k not in ("scale", "claims")), data
        return
    assert mismatches(rec, md, data) == []


def test_a_perturbed_number_is_caught():
    rec = load_recipe(RECIPES / "mlkd")
    md = (RECIPES / "mlkd" / "results.md").read_text()
    data = json.loads((RECIPES / "mlkd" / "results.json").read_text())
    score = copy.deepcopy(data)
    score["kd_b"]["a_mlkd_b"]["cer"]["mean"] += 0.01
    assert mismatches(rec, md, data) == []
    assert any(m.startswith("kd_b/a_mlkd_b:") for m in mismatches(rec, md, score))
    test = copy.deepcopy(data)
    test["kd_b"]["a_mlkd_b"]["tests_cer"]["a_seqkd_b"][0]["p_value"] += 0.01
    assert any(m.startswith("kd_b/a_mlkd_b:") for m in mismatches(rec, md, test))
