"""peerseq.report.claims: each verdict of EVIDENCE.md's schema from decoded test sets, and the
conditions that make a claim inconclusive whatever its scores."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from peerseq.decoding.outputs import write_outputs
from peerseq.decoding.peer import Decoded
from peerseq.report.claims import claims, edge, evaluate_claim
from peerseq.report.recipe import Recipe
from peerseq.report.systems import Group
from peerseq.rundir.layout import RunDir

SYSTEMS = {
    "base": {"run": "base", "peer": "a", "label": "Baseline"},
    "meth": {"run": "meth", "peer": "a", "label": "Method"},
    "teacher": {"run": "teacher", "peer": "t", "label": "Teacher"},
}
REFS = [" ".join(random.Random(i).choices("ABCDEFGH", k=6)) for i in range(60)]


def _spoil(ref: str, rng: random.Random, p: float) -> str:
    """ref with each letter replaced by 'Z' with probability p."""
    return "".join("Z" if c != " " and rng.random() < p else c for c in ref)


def _write(root: Path, seed: int, run: str, peer: str, error: float | None) -> None:
    """One seed's decoded test set of run/peer: each letter wrong with probability `error`
    (None: empty hypotheses, a CTC model still emitting only blanks)."""
    rng = random.Random(1000 * seed + sum(map(ord, run)))
    hyps = [""] * len(REFS) if error is None else [_spoil(r, rng, error) for r in REFS]
    ids = [f"u{i:03d}" for i in range(len(REFS))]
    write_outputs(
        Decoded(ids, hyps, REFS), RunDir(root / f"s{seed}" / run).hypotheses(peer, "test")
    )


def _case(tmp_path: Path, errors: dict[str, dict[int, float]]) -> tuple[Recipe, Group]:
    for run, per_seed in errors.items():
        for seed, err in per_seed.items():
            _write(tmp_path, seed, run, SYSTEMS[run]["peer"], err)
    seeds = {s: tmp_path / f"s{s}" for s in sorted({s for e in errors.values() for s in e})}
    rec = Recipe(tmp_path, tmp_path / "recipe.yaml", {}, SYSTEMS)
    return rec, Group("g", tmp_path, seeds, {})


CLAIM = {
    "id": "c",
    "paper": "003 Table 2",
    "claim": "the method is better",
    "key": True,
    "method": "meth",
    "baseline": "base",
}
SEC = {"title": "## Verdicts", "metric": "cer", "claims": [CLAIM]}


def test_a_clear_gain_on_every_seed_is_reproduced(tmp_path):
    rec, g = _case(tmp_path, {"base": {1: 0.4, 2: 0.4, 3: 0.4}, "meth": {1: 0.2, 2: 0.2, 3: 0.2}})
    r = evaluate_claim(rec, g, CLAIM, "cer", SEC)
    assert r["verdict"] == "reproduced", r["why"]
    assert r["seeds_agreeing"] == 3 and r["p"] < 0.01 and r["delta"] > 10
    assert set(r["systems"]) == {"Baseline", "Method"}
    assert list(r["systems"]["Method"]["seeds"]) == ["1", "2", "3"]
    assert r["metric"] == "CER" and r["higher_is_better"] is False and r["key"] is True


def test_a_loss_is_not_reproduced(tmp_path):
    rec, g = _case(tmp_path, {"base": {1: 0.2, 2: 0.2, 3: 0.2}, "meth": {1: 0.4, 2: 0.4, 3: 0.4}})
    r = evaluate_claim(rec, g, CLAIM, "cer", SEC)
    assert r["verdict"] == "not reproduced" and r["delta"] < 0 and r["seeds_agreeing"] == 0


def test_identical_outputs_give_p_1_and_no_gain(tmp_path):
    rec, g = _case(tmp_path, {"base": {1: 0.3, 2: 0.3, 3: 0.3}, "meth": {1: 0.3, 2: 0.3, 3: 0.3}})
    for s in (1, 2, 3):  # the method's files are the baseline's
        src = RunDir(tmp_path / f"s{s}" / "base").outputs("a", "test")
        RunDir(tmp_path / f"s{s}" / "meth").outputs("a", "test").write_text(src.read_text())
    r = evaluate_claim(rec, g, CLAIM, "cer", SEC)
    assert r["delta"] == 0 and r["p"] == 1.0 and r["verdict"] == "not reproduced"


def test_a_small_gain_within_the_noise_is_inconclusive(tmp_path):
    rec, g = _case(
        tmp_path, {"base": {1: 0.30, 2: 0.30, 3: 0.30}, "meth": {1: 0.29, 2: 0.31, 3: 0.29}}
    )
    r = evaluate_claim(rec, g, CLAIM, "cer", SEC)
    assert r["verdict"] in ("inconclusive", "not reproduced"), r  # never "reproduced"
    assert r["p"] > 0.05


def test_two_seeds_are_not_enough(tmp_path):
    rec, g = _case(tmp_path, {"base": {1: 0.4, 2: 0.4}, "meth": {1: 0.2, 2: 0.2}})
    r = evaluate_claim(rec, g, CLAIM, "cer", SEC)
    assert r["verdict"] == "inconclusive" and "needs 3" in r["why"]


def test_a_system_at_the_floor_makes_it_inconclusive(tmp_path):
    rec, g = _case(
        tmp_path, {"base": {1: None, 2: None, 3: None}, "meth": {1: 0.3, 2: 0.3, 3: 0.3}}
    )
    r = evaluate_claim(rec, g, CLAIM, "cer", SEC)
    assert r["verdict"] == "inconclusive" and "Baseline is at the floor" in r["why"]


def test_a_teacher_no_better_than_its_student_makes_it_inconclusive(tmp_path):
    errors = {"base": {1: 0.4, 2: 0.4, 3: 0.4}, "meth": {1: 0.2, 2: 0.2, 3: 0.2}}
    rec, g = _case(tmp_path, errors | {"teacher": {1: 0.5, 2: 0.5, 3: 0.5}})
    claim = CLAIM | {"requires": [["teacher", "base"]]}
    r = evaluate_claim(rec, g, claim, "cer", SEC)
    assert r["verdict"] == "inconclusive" and "needs Teacher better than Baseline" in r["why"]


@pytest.mark.parametrize(
    "metric, mean, where",
    [
        ("cer", 85.0, "at the floor"),
        ("cer", 1.0, "at the ceiling"),
        ("cer", 30.0, None),
        ("wer", 95.0, "at the floor"),
        ("bleu", 3.0, "at the floor"),
        ("bleu", 25.0, None),
    ],
)
def test_floor_and_ceiling(metric, mean, where):
    assert edge(metric, mean) == where


def test_the_verdict_table_shows_each_record(tmp_path):
    rec, g = _case(tmp_path, {"base": {1: 0.4, 2: 0.4, 3: 0.4}, "meth": {1: 0.2, 2: 0.2, 3: 0.2}})
    md, records = claims(rec, g, SEC)
    (r,) = records
    row = next(line for line in md[1].splitlines() if line.startswith("| the method is better"))
    b, m = r["systems"]["Baseline"], r["systems"]["Method"]
    assert f"Baseline: {b['mean']:.2f} ± {b['sd']:.2f}" in row
    assert f"Method: {m['mean']:.2f} ± {m['sd']:.2f}" in row
    assert f"{r['delta']:+.2f}" in row and "**reproduced**" in row and "3/3" in row


def test_a_gain_on_fewer_seeds_than_the_means_names_its_seeds(tmp_path):
    rec, g = _case(tmp_path, {"base": {1: 0.4, 2: 0.4, 3: 0.4}, "meth": {1: 0.2}})
    md, (r,) = claims(rec, g, SEC)
    row = next(line for line in md[1].splitlines() if line.startswith("| the method is better"))
    assert r["seeds"] == [1] and f"| {r['delta']:+.2f} (seed 1) |" in row and "1/1" in row


def test_a_shared_baseline_is_paired_with_every_seed_of_the_method(tmp_path):
    """A system trained once for every seed (`shared: true`: a pre-trained peer, a cascade) has
    its one output in the shared seed's folder; each seed of the method is tested against it."""
    rec, g = _case(tmp_path, {"base": {1: 0.4}, "meth": {1: 0.2, 2: 0.2, 3: 0.2}})
    rec.systems = SYSTEMS | {"base": SYSTEMS["base"] | {"shared": True}}
    md, (r,) = claims(rec, g, SEC)
    assert r["seeds"] == [1, 2, 3] and r["seeds_agreeing"] == 3, r
    assert r["verdict"] == "reproduced", r["why"]
    base = r["systems"]["Baseline"]  # one run: its one score, no spread
    assert base["shared"] and base["sd"] is None and list(base["seeds"]) == ["1"]
    row = next(line for line in md[1].splitlines() if line.startswith("| the method is better"))
    assert f"Baseline: {base['mean']:.2f} (one run, shared by every seed)" in row
    # not shared, the same files give one seed only: no verdict
    rec.systems = SYSTEMS
    assert evaluate_claim(rec, g, CLAIM, "cer", SEC)["seeds"] == [1]
