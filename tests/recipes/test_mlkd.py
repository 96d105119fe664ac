"""recipes/mlkd (paper 003): reproduce.sh at tiny scale end to end, every method, and the paper
configuration starting for a few updates.

Tiny models learn nothing worth scoring in seconds, so these tests check that every method is
the method it claims to be (students learn from the frozen teachers' cached transcripts and from
each other, the same-structure pairs are two models of one structure, a third student is linked
to both others) and that every system is decoded and reported, not that one method beats another
(results.md does that, at small scale).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from peerseq.decoding.teacher_labels import weights_hash
from peerseq.runs import load_run
from tests.models.test_recurrent_ctc import table1
from tests.recipes.helpers import records, weights
from tests.recipes.helpers import reproduce as run_recipe


def reproduce(*args: str):
    return run_recipe("mlkd", *args)


ALL = "teacher_a teacher_b students seqkd mlkd multi mlkd_multi same three"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlkd")
    reproduce("--scale", "tiny", "--out", str(out), "--results", str(out / "results"),
              "--methods", ALL)  # fmt: skip
    return out


def seed_dir(tiny: Path) -> Path:
    return tiny / "tiny" / "fsdd-connected" / "s1"


def test_every_system_is_reported(tiny):
    report = json.loads((tiny / "results.json").read_text())
    assert set(report["table2"]) == {"teacher_a", "a", "a_seqkd", "a_mlkd", "b", "b_seqkd",
                                     "b_mlkd"}  # fmt: skip
    assert set(report["table4"]) == {"teacher_a", "teacher_b", "a_multi", "a_mlkd", "a_mlkd_multi",
                                     "b_multi", "b_mlkd", "b_mlkd_multi"}  # fmt: skip
    assert set(report["table5"]) == {"aa_1", "aa_2", "a_mlkd", "bb_1", "bb_2", "b_mlkd",
                                     "three_a", "three_b", "three_c"}  # fmt: skip
    t2 = report["table2"]
    # MLKD against seqKD, paired by utterance, seed 1: the test's difference is the difference of
    # the two corpus CERs in the table
    for student in ("a", "b"):
        mlkd, seqkd = t2[f"{student}_mlkd"], t2[f"{student}_seqkd"]
        ((test),) = mlkd["tests_cer"][f"{student}_seqkd"]
        assert test["seed"] == 1
        cers = mlkd["cer"]["scores"]["1"], seqkd["cer"]["scores"]["1"]
        assert abs(test["delta"] - (cers[0] - cers[1])) < 0.01
        assert mlkd["cer"]["n"] == 20  # data.limit_test at tiny scale
    # sizes: the wide student has more parameters than the deep one (at tiny size the teachers
    # are smaller still; at the paper's size they are 5-9 times larger, below)
    assert t2["a"]["parameters"] > t2["b"]["parameters"]
    costs = report["costs"]
    for name, counts in table1().items():  # Table 1 at the paper's size, ours and the paper's
        assert costs[name]["paper_size"]["params"] == counts["ours"]
        assert costs[name]["paper_size"]["paper_params"] == counts["paper"]
    for name in ("teacher_a", "student_a", "student_b"):
        assert costs[name]["rtf"]["rtf"] > 0
    paper = {name: c["paper_size"] for name, c in costs.items()}
    assert paper["teacher_a"]["params"] > 5 * paper["student_a"]["params"]
    assert paper["teacher_a"]["flops_per_s"] > paper["student_a"]["flops_per_s"] > 0
    md = (tiny / "results.md").read_text()
    for heading in ("Table 2/3", "Table 4", "Table 5", "Table 1 and Table 6", "Figure 3"):
        assert heading in md
    for student in ("student_a", "student_b"):
        fig = report["figure3"][student]
        assert len(fig["series"]) == 6  # alone, seqKD, MLKD, multi, MLKD+multi, same-structure
        assert (tiny / fig["figure"]).stat().st_size > 10_000


def test_students_learn_from_cached_teacher_transcripts_and_each_other(tiny):
    s1 = seed_dir(tiny)
    # the teachers decode the training set once per seed, into one folder, named by their hash
    cache = sorted(p.name for p in (s1 / "pseudo_labels").glob("*.json"))
    ha = weights_hash(load_run(s1 / "teacher_a", device="cpu").peers["teacher_a"].model)
    hb = weights_hash(load_run(s1 / "teacher_b", device="cpu").peers["teacher_b"].model)
    assert cache == sorted([f"teacher_a-{ha}-k1-b8.json", f"teacher_b-{hb}-k1-b8.json"])
    assert not list(s1.glob("*/pseudo_labels"))
    labels = json.loads((s1 / "pseudo_labels" / f"teacher_a-{ha}-k1-b8.json").read_text())
    # every training utterance of 1-15 s (section 5.1.1's filter), one hypothesis each (k = 1)
    assert 30 < len(labels) <= 40 and all(len(hs) == 1 for hs in labels.values())
    expected = {
        "students": {"a/ctc", "b/ctc"},
        "seqkd": {"a/ctc", "b/ctc", "seqkd(teacher_a->a)", "seqkd(teacher_a->b)"},
        "mlkd": {
            "a/ctc",
            "b/ctc",
            "seqkd(teacher_a->a)",
            "seqkd(teacher_a->b)",
            "kl(b||a)",
            "kl(a||b)",
        },  # fmt: skip
        "multi": {
            "a/ctc",
            "b/ctc",
            "seqkd(teacher_a->a)",
            "seqkd(teacher_a->b)",
            "seqkd(teacher_b->a)",
            "seqkd(teacher_b->b)",
        },  # fmt: skip
    }
    expected["mlkd_multi"] = expected["multi"] | {"kl(b||a)", "kl(a||b)"}
    expected["mlkd_three"] = expected["mlkd"] | {"c/ctc", "seqkd(teacher_a->c)", "kl(c||a)",
                                                 "kl(c||b)", "kl(a||c)", "kl(b||c)"}  # fmt: skip
    for run, terms in expected.items():
        rows = records(s1 / run)
        keys = {k for k in rows[-1] if ("/" in k or "(" in k) and not k.startswith("w:")}
        assert keys == terms, run
        kls = [k for k in terms if k.startswith("kl(")]
        assert all(r[k] > 0 for r in rows for k in kls), run
    # Eq. 8 weights: (1 - a) CTC + a seqKD + a b KL with a = 0.5, b = 1
    cfg = yaml.safe_load((s1 / "mlkd" / "config.yaml").read_text())
    assert cfg["peers"]["a"]["loss_weight"] == 0.5
    assert [lk["weight"] for lk in cfg["links"]] == [0.5, 0.5, 0.5, 0.5]
    # frozen teachers: bit-equal to their own runs' (best) weights in every student run
    for run, teacher in (("mlkd", "teacher_a"), ("mlkd_multi", "teacher_b")):
        mine, theirs = weights(s1 / run, teacher), weights(s1 / teacher, teacher)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_same_structure_pairs_are_two_models_of_one_structure(tiny):
    s1 = seed_dir(tiny)
    for run, preset in (("mlkd_aa", "student_a"), ("mlkd_bb", "student_b")):
        cfg = yaml.safe_load((s1 / run / "config.yaml").read_text())
        presets = {cfg["peers"][p]["model"]["preset"] for p in ("a", "b")}
        assert presets == {preset}
        wa, wb = weights(s1 / run, "a"), weights(s1 / run, "b")
        assert wa.keys() == wb.keys()
        assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # two models, not one
    cfg = yaml.safe_load((s1 / "mlkd" / "config.yaml").read_text())
    assert (cfg["peers"]["a"]["model"]["preset"], cfg["peers"]["b"]["model"]["preset"]) == (
        "student_a",
        "student_b",
    )


def test_a_rerun_trains_nothing(tiny):
    s1 = seed_dir(tiny)
    before = {p: p.stat().st_mtime_ns for p in s1.glob("*/metrics.jsonl")}
    reproduce("--scale", "tiny", "--out", str(tiny), "--results", str(tiny / "again"),
              "--methods", "mlkd")  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in s1.glob("*/metrics.jsonl")} == before
    assert (tiny / "again.md").is_file()


def test_paper_configuration_starts(tiny, tmp_path):
    """The paper's sizes (Table 1) and optimiser (SGD, lr 3e-4) for two updates of Teacher A and
    of the MLKD pair, on the tiny corpus as a stand-in for TIMIT/LibriSpeech manifests."""
    out = tmp_path / "paper"
    reproduce("--scale", "paper", "--data", str(tiny / "data" / "fsdd-connected-300"),
              "--out", str(out), "--methods", "mlkd", "--max-steps", "2", "--no-test", "--",
              "data.limit_train=8", "data.limit_dev=4", "train.log_every=1")  # fmt: skip
    run = out / "paper-max2" / "fsdd-connected" / "s1" / "mlkd"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert {cfg["peers"][p]["model"]["size"] for p in ("teacher_a", "a", "b")} == {"paper"}
    assert cfg["optim"]["name"] == "sgd" and cfg["optim"]["lr"] == 0.0003
    assert records(run)[-1]["step"] == 2
    n = sum(v.numel() for v in weights(run, "a").values() if v.is_floating_point())
    assert n > 10e6  # Student A at the paper's size (Table 1: 11.9 M)
