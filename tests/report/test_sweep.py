"""peerseq.report.sweep (paper 002's Figure 6): a value is named the best of its axis only where
the seeds' spread allows it, and the page says which values it cannot be told apart from."""

from __future__ import annotations

import random
from pathlib import Path

from peerseq.decoding.outputs import write_outputs
from peerseq.decoding.peer import Decoded
from peerseq.report.compare import score_system
from peerseq.report.recipe import Recipe
from peerseq.report.sweep import best_value, sweep
from peerseq.report.systems import Group
from peerseq.rundir.layout import RunDir

REFS = [" ".join(random.Random(i).choices("ABCDEFGH", k=6)) for i in range(60)]


def _write(root: Path, seed: int, run: str, error: float) -> Path:
    """One seed's decoded test set of run's `seq` peer, each letter wrong with probability
    `error` (a different draw for every seed and run)."""
    rng = random.Random(1000 * seed + sum(map(ord, run)))
    hyps = ["".join("Z" if c != " " and rng.random() < error else c for c in r) for r in REFS]
    path = RunDir(root / f"s{seed}" / run).hypotheses("seq", "test")
    write_outputs(Decoded([f"u{i:03d}" for i in range(len(REFS))], hyps, REFS), path)
    return RunDir(root / f"s{seed}" / run).outputs("seq", "test")


def _points(root: Path, errors: dict[float, dict[int, float]]):
    outs = {
        x: {s: _write(root, s, f"em_alpha{x:g}", e) for s, e in per_seed.items()}
        for x, per_seed in errors.items()
    }
    return {x: score_system(f"alpha={x:g}", o, "cer") for x, o in outs.items()}, outs


def test_a_clearly_better_value_on_every_seed_is_the_best(tmp_path):
    scores, outs = _points(
        tmp_path, {0: {1: 0.4, 2: 0.4}, 2: {1: 0.1, 2: 0.1}, 4: {1: 0.3, 2: 0.3}}
    )
    best = best_value(scores, outs, "cer")
    assert best["value"] == 2 and best["separated"] is True
    assert set(best["against"]) == {0, 4}
    assert all(a["delta"] > 0 and a["p"] < 0.05 and a["seeds_agreeing"] == 2
               for a in best["against"].values())  # fmt: skip


def test_values_within_the_noise_have_no_best(tmp_path):
    scores, outs = _points(
        tmp_path, {0: {1: 0.30, 2: 0.31}, 2: {1: 0.29, 2: 0.31}, 4: {1: 0.5, 2: 0.5}}
    )
    best = best_value(scores, outs, "cer")
    assert best["separated"] is False and best["value"] in (0, 2)
    other = 2 if best["value"] == 0 else 0
    assert best["against"][other]["p"] >= 0.05
    assert best["against"][4]["p"] < 0.05  # the clearly worse value is still told apart


def test_one_seed_is_never_enough(tmp_path):
    scores, outs = _points(tmp_path, {0: {1: 0.4}, 2: {1: 0.1}})
    best = best_value(scores, outs, "cer", min_seeds=2)
    assert best["value"] == 2 and best["against"][0]["p"] < 0.05 and best["separated"] is False


def test_the_section_draws_every_point_and_says_what_the_spread_allows(tmp_path):
    errors = {"em": 0.2, "em_alpha0": 0.2, "em_alpha4": 0.5, "em_lambda0.1": 0.21, "mt": 0.45}
    for run, e in errors.items():
        for seed in (1, 2):
            _write(tmp_path, seed, run, e)
    rec = Recipe(tmp_path, tmp_path / "recipe.yaml", {}, {})
    g = Group("g", tmp_path, {1: tmp_path / "s1", 2: tmp_path / "s2"}, {"figdir": tmp_path / "f"})
    sec = {"kind": "sweep", "title": "### Figure 6", "run": "em", "metric": "cer",
           "default": {"alpha": 2.0, "lambda": 0.5}, "references": {"plain": "mt"},
           "axes": {"alpha": "alpha", "lambda": "lambda"}, "file": "sweep.png"}  # fmt: skip
    md, record = sweep(rec, g, sec)
    assert (tmp_path / "f" / "sweep.png").stat().st_size > 10_000
    assert set(record["points"]["alpha"]) == {"0", "2", "4"}
    assert set(record["points"]["lambda"]) == {"0.1", "0.5"}
    assert record["points"]["alpha"]["4"]["mean"] > record["points"]["alpha"]["2"]["mean"]
    assert list(record["points"]["alpha"]["2"]["scores"]) == ["1", "2"]
    assert record["points"]["alpha"]["2"]["std"] is not None
    # alpha 0 and 2 are the same error rate: no best value is named, and the page says so
    assert record["best"]["alpha"]["separated"] is False
    text = "\n".join(md)
    assert "no best value at this spread" in text and "not told apart from" in text
