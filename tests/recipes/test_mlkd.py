"""recipes/mlkd (paper 003): a tiny reproduce of MLKD, the multi-teacher students and three
students (with both teachers), and the paper configuration's models taking one step.

Tiny models learn nothing worth scoring in seconds, so these tests check that every method is
the method it claims to be (students learn from the frozen teachers' cached transcripts and from
each other, the same-structure pairs are two models of one structure, a third student is linked
to both others), that every system is decoded and reported, and that a rerun trains nothing; not
that one method beats another (results.md does that, at small scale).
"""

from __future__ import annotations

import json
import os

import torch
import yaml

from peerseq.decoding.teacher_labels import weights_hash
from peerseq.runs import load_run
from tests.models.test_recurrent_ctc import table1 as paper003_table1
from tests.recipes.conftest import MLKD_TINY
from tests.recipes.helpers import paper_step, records, reproduce, run_args, stamps, weights

# the paper's roles and the presets that play them
ROLES = {
    "teacher_a": "deepspeech2_ctc",
    "teacher_b": "crnn_ctc",
    "student_a": "blstm_ctc_wide",
    "student_b": "blstm_ctc_deep",
}


def test_every_system_is_reported(mlkd_tiny):
    out, done = mlkd_tiny
    assert {d["run"] for d in done} == {"teacher_a", "teacher_b", "mlkd", "multi", "mlkd_three"}
    report = json.loads((out / "results.json").read_text())
    assert set(report["table2"]) == {"teacher_a", "a_mlkd", "b_mlkd"}
    assert set(report["table4"]) == {"teacher_a", "teacher_b", "a_multi", "a_mlkd", "b_multi",
                                     "b_mlkd"}  # fmt: skip
    assert set(report["table5"]) == {"a_mlkd", "b_mlkd", "three_a", "three_b", "three_c"}
    assert "kd_b" not in report  # no Teacher-B-only student: the table is left out
    # A's multi-teacher student against A's MLKD? No: against seqKD, which was not run, so no
    # test; B in MLKD with A and C against B's MLKD, paired by utterance, seed 1: the test's
    # difference is the difference of the two corpus CERs in the table
    assert report["table4"]["a_multi"]["tests_cer"] == {}
    t5 = report["table5"]
    ((test),) = t5["three_b"]["tests_cer"]["b_mlkd"]
    cers = t5["three_b"]["cer"]["scores"]["1"], t5["b_mlkd"]["cer"]["scores"]["1"]
    assert test["seed"] == 1 and abs(test["delta"] - (cers[0] - cers[1])) < 0.01
    assert t5["b_mlkd"]["cer"]["n"] == 6  # data.limit_test
    # the wide student has more parameters than the deep one
    assert report["table2"]["a_mlkd"]["parameters"] > report["table2"]["b_mlkd"]["parameters"]
    costs = report["costs"]
    table1 = paper003_table1()  # Table 1 at the paper's size, ours and the paper's
    for name, preset in ROLES.items():
        assert costs[name]["paper_size"]["params"] == table1[preset]["ours"]
        assert costs[name]["paper_size"]["paper_params"] == table1[preset]["paper"]
    for name in ("teacher_a", "teacher_b"):  # the students alone were not trained: no RTF
        assert costs[name]["rtf"]["rtf"] > 0
    assert costs["student_a"]["rtf"] is None
    paper = {name: c["paper_size"] for name, c in costs.items()}
    assert paper["teacher_a"]["params"] > 5 * paper["student_a"]["params"]
    assert paper["teacher_a"]["flops_per_s"] > paper["student_a"]["flops_per_s"] > 0
    md = (out / "results.md").read_text()
    for heading in (
        "Table 2/3",
        "Table 4",
        "Table 8",
        "Verdicts",
        "Table 1 and Table 6",
        "Figure 3",
    ):
        assert heading in md
    for student in ("student_a", "student_b"):
        fig = report["figure3"][student]
        assert len(fig["series"]) == 2  # MLKD, multi-teacher
        assert (out / fig["figure"]).stat().st_size > 10_000


def test_students_learn_from_cached_teacher_transcripts_and_each_other(mlkd_tiny):
    out, _ = mlkd_tiny
    s1 = out / "tiny" / "fsdd-connected" / "s1"
    # the teachers decode the training set once per seed, into one folder, named by their hash
    cache = sorted(p.name for p in (s1 / "pseudo_labels").glob("*.json"))
    ha = weights_hash(load_run(s1 / "teacher_a", device="cpu").peers["teacher_a"].model)
    hb = weights_hash(load_run(s1 / "teacher_b", device="cpu").peers["teacher_b"].model)
    assert cache == sorted([f"teacher_a-{ha}-k1-b8.json", f"teacher_b-{hb}-k1-b8.json"])
    assert not list(s1.glob("*/pseudo_labels"))
    labels = json.loads((s1 / "pseudo_labels" / f"teacher_a-{ha}-k1-b8.json").read_text())
    # every training utterance of 1-15 s (section 5.1.1's filter), one hypothesis each (k = 1)
    assert 3 < len(labels) <= 6 and all(len(hs) == 1 for hs in labels.values())
    mlkd = {"a/ctc", "b/ctc", "seqkd(teacher_a->a)", "seqkd(teacher_a->b)", "kl(b||a)", "kl(a||b)"}
    expected = {
        "mlkd": mlkd,
        "multi": {"a/ctc", "b/ctc", "seqkd(teacher_a->a)", "seqkd(teacher_a->b)",
                  "seqkd(teacher_b->a)", "seqkd(teacher_b->b)"},
        "mlkd_three": mlkd | {"c/ctc", "seqkd(teacher_a->c)", "kl(c||a)", "kl(c||b)", "kl(a||c)",
                              "kl(b||c)"},
    }  # fmt: skip
    for run, terms in expected.items():
        rows = records(s1 / run)
        keys = {k for k in rows[-1] if ("/" in k or "(" in k) and not k.startswith("w:")}
        assert keys == terms, run
        kls = [k for k in terms if k.startswith("kl(")]
        assert all(r[k] > 0 for r in rows for k in kls), run
    # Eq. 8 weights: (1 - a) CTC + a seqKD + a b KL with a = 0.75, b = 2 (pilot/README.md)
    cfg = yaml.safe_load((s1 / "mlkd" / "config.yaml").read_text())
    assert cfg["peers"]["a"]["loss_weight"] == 0.25
    assert [lk["weight"] for lk in cfg["links"]] == [0.75, 0.75, 1.5, 1.5]
    # frozen teachers: bit-equal to their own runs' (best) weights in every student run
    for run, teacher in (("mlkd", "teacher_a"), ("multi", "teacher_b")):
        mine, theirs = weights(s1 / run, teacher), weights(s1 / teacher, teacher)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_same_structure_pairs_are_two_models_of_one_structure(mlkd_tiny):
    out, _ = mlkd_tiny
    for run, preset in (("mlkd_aa", "blstm_ctc_wide"), ("mlkd_bb", "blstm_ctc_deep")):
        step = paper_step(*run_args("mlkd", run, scale="tiny", out=out)[1:])
        presets = {step["exp"].peers[p].model.preset for p in ("a", "b")}
        assert presets == {preset}
        assert step["parameters"]["a"] == step["parameters"]["b"]
    cfg = yaml.safe_load(
        (out / "tiny" / "fsdd-connected" / "s1" / "mlkd" / "config.yaml").read_text()
    )
    assert (cfg["peers"]["a"]["model"]["preset"], cfg["peers"]["b"]["model"]["preset"]) == (
        "blstm_ctc_wide",
        "blstm_ctc_deep",
    )


def test_a_rerun_trains_nothing(mlkd_tiny):
    out, _ = mlkd_tiny
    before = stamps(out / "tiny")
    done = reproduce("mlkd", scale="tiny", out=out, results=out / "again", methods=["mlkd"],
                     extra=MLKD_TINY)  # fmt: skip
    assert [d["action"] for d in done] == ["reused", "reused"]  # teacher_a, mlkd
    assert stamps(out / "tiny") == before
    assert (out / "again.md").is_file()


def test_paper_configuration_takes_a_step(mlkd_tiny):
    """The paper's sizes (Table 1) and optimiser (SGD, lr 3e-4) for the MLKD pair and its
    teacher: one forward/backward on two utterances of the tiny corpus (TIMIT's stand-in)."""
    out, _ = mlkd_tiny
    data = str(out / "data" / "fsdd-connected-300")
    run, config, overrides = run_args("mlkd", "mlkd", scale="paper", data=data, out=out / "paper")
    assert run == out / "paper" / "paper" / "fsdd-connected" / "s1" / "mlkd"
    step = paper_step(config, overrides)
    exp = step["exp"]
    assert {exp.peers[p].model.size for p in ("teacher_a", "a", "b")} == {"paper"}
    assert exp.optim.name == "sgd" and exp.optim.lr == 0.0003
    assert step["loss"] > 0
    assert step["parameters"]["a"] == paper003_table1()["blstm_ctc_wide"]["ours"]  # Table 1: 11.9 M


def test_a_student_is_trained_again_after_its_teacher(mlkd_tiny):
    """Teacher A's weights newer than the MLKD run: the run is removed and trained again from
    scratch (never reused with another teacher); the teacher itself is reused."""
    out, _ = mlkd_tiny
    s1 = out / "tiny" / "fsdd-connected" / "s1"
    later = (s1 / "mlkd" / "config.yaml").stat().st_mtime + 10
    os.utime(s1 / "teacher_a" / "best", (later, later))
    before = stamps(s1 / "mlkd")
    done = reproduce("mlkd", scale="tiny", out=out, methods=["mlkd"], extra=MLKD_TINY, test=False)
    assert [(d["run"], d["action"]) for d in done] == [("teacher_a", "reused"), ("mlkd", "trained")]
    after = stamps(s1 / "mlkd")
    assert after.keys() == {p for p in before if "/eval/" not in str(p)}  # test decoding is gone
    assert all(after[p] > before[p] for p in after)


def test_every_seed_learns_from_seed_1s_teacher(mlkd_tiny):
    """Teachers are `shared`: seed 2 trains no teacher of its own; its students start from, and
    learn from, the teacher in seed 1's folder (the paper's one pre-trained teacher)."""
    out, _ = mlkd_tiny
    done = reproduce("mlkd", scale="tiny", out=out, seeds=[2], methods=["mlkd"], extra=MLKD_TINY,
                     test=False)  # fmt: skip
    assert [(d["seed"], d["run"]) for d in done] == [(1, "teacher_a"), (2, "mlkd")]
    assert done[0]["action"] == "reused"
    root = out / "tiny" / "fsdd-connected"
    assert not (root / "s2" / "teacher_a").exists()
    cfg = yaml.safe_load((root / "s2" / "mlkd" / "config.yaml").read_text())
    assert (
        cfg["peers"]["teacher_a"]["model"]["init_from"] == f"{root / 's1' / 'teacher_a'}:teacher_a"
    )
    assert cfg["train"]["seed"] == 2
