"""recipes/em_network (paper 002): reproduce.sh at tiny scale end to end for both tasks, and the
paper configuration starting for a few updates.

Tiny models learn nothing worth scoring in seconds, so these tests check that every method is
the method it claims to be (the auxiliary network reads the target and is dropped at export,
alpha and lambda reach the runs, the offline teachers stay frozen, seqKD trains on the teacher's
cached translations, R-Drop is one model run twice) and that every system is decoded from its
export and reported, not that one method beats another (results.md does that, at small scale).
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from peerseq.decoding.outputs import read_outputs
from peerseq.decoding.teacher_labels import weights_hash
from peerseq.runs import decode_split, load_run
from tests.recipes.helpers import records, weights
from tests.recipes.helpers import reproduce as run_recipe


def reproduce(*args: str):
    return run_recipe("em_network", *args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("em_network")
    common = ("--scale", "tiny", "--out", str(out), "--results", str(out / "results"))
    reproduce("--task", "asr", *common)
    reproduce("--task", "mt", *common)
    return out


def test_every_system_is_reported_from_its_export(tiny):
    report = json.loads((tiny / "results.json").read_text())
    asr, mt = report["asr/fsdd-connected"], report["mt/de-en"]
    assert set(asr["systems"]) == {"ctc", "skd", "em", "teacher"}
    assert set(mt["systems"]) == {"mt", "seqkd", "rdrop", "em", "teacher"}
    # EM-Network against each baseline, paired by utterance, seed 1: the test's difference is
    # the difference of the two corpus scores in the table
    for task, metric, methods in (
        (asr, "wer", ("ctc", "skd")),
        (mt, "bleu", ("mt", "seqkd", "rdrop")),
    ):
        em_score = task["systems"]["em"][metric]["scores"]["1"]
        for method in methods:
            ((test),) = task["systems"][method]["em_vs_this"]
            base = task["systems"][method][metric]["scores"]["1"]
            assert test["seed"] == 1 and abs(test["delta"] - (em_score - base)) < 0.01
    assert set(mt["repetition"]) == {"mt", "seqkd", "rdrop", "em", "teacher"}
    # the sweep's points: alpha 0 and 2, lambda 0.3 and 0.5 (the EM run is the shared point)
    assert set(mt["sweep"]["alpha"]) == {"0.0", "2.0"}
    assert set(mt["sweep"]["lambda"]) == {"0.3", "0.5"}
    for task in (asr, mt):  # Table 4: theta at inference is the plain model; rho exists
        p = task["parameters"]
        assert p["rho"] > 0 and p["teacher"] > p["theta"]
    assert asr["parameters"]["theta"] == asr["systems"]["ctc"]["parameters"]
    assert asr["systems"]["em"]["parameters"] == asr["systems"]["ctc"]["parameters"]
    assert mt["systems"]["em"]["parameters"] == mt["systems"]["mt"]["parameters"]
    md = (tiny / "results.md").read_text()
    for heading in ("Table 3", "Table 4", "Figure 3/5", "Figure 4", "Figure 6"):
        assert heading in md
    for png in ("posteriorgram-asr-fsdd-connected", "losses-asr-fsdd-connected",
                "losses-mt-de-en", "sweep-mt-de-en"):  # fmt: skip
        assert (tiny / "figures" / f"{png}.png").stat().st_size > 10_000


def test_em_networks_read_the_target_and_are_dropped_at_export(tiny):
    for task, sub, term in (
        ("asr", "fsdd-connected", "l2(em,seq)"),
        ("mt", "de-en", "kl(em||seq)"),
    ):
        run = tiny / "tiny" / task / sub / "s1" / "em"
        rows = records(run)
        assert all(r["alpha"] == 2.0 and r[term] > 0 for r in rows)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        em = cfg["peers"]["em"]
        assert em["reads"] == "@seq" and em["model"]["preset"] == "em_network"
        assert em["model"]["mask_prob"] == (0.5 if task == "mt" else 0.0)  # lambda: AED only
        export = json.loads((run / "export" / "export.json").read_text())
        assert export["left_out"] == ["em"]
        # the export decodes exactly as the sequence model inside the trained run
        mine = read_outputs(run / "export" / "eval" / "seq.test.jsonl")
        theirs = decode_split(load_run(run), "seq", "test")
        assert [mine[i][0] for i in theirs.ids] == theirs.hyps


def test_offline_teachers_are_frozen_and_seqkd_learns_their_translations(tiny):
    asr = tiny / "tiny" / "asr" / "fsdd-connected" / "s1"
    assert weights(asr / "skd", "teacher").keys() == weights(asr / "teacher", "seq").keys()
    for k, v in weights(asr / "skd", "teacher").items():
        assert torch.equal(v, weights(asr / "teacher", "seq")[k]), k
    assert all(r["l2(teacher,seq)"] > 0 for r in records(asr / "skd"))  # two different models
    mt = tiny / "tiny" / "mt" / "de-en" / "s1"
    teacher = load_run(mt / "seqkd").peers["teacher"].model
    cache = list((mt / "seqkd" / "pseudo_labels").glob("teacher-*.json"))
    # decoded with the teacher's own settings: beam 4, length penalty 0.6
    (name,) = [p.name for p in cache]
    assert name.startswith(f"teacher-{weights_hash(teacher)}-k1-b4-lp0.6-")
    labels = json.loads(cache[0].read_text())
    assert len(labels) == 300  # the whole training set, translated once
    assert "seq/nll" in records(mt / "seqkd")[0]  # its own loss, on the hypotheses


def test_rdrop_and_sweep_runs_are_what_they_say(tiny):
    mt = tiny / "tiny" / "mt" / "de-en" / "s1"
    rows = records(mt / "rdrop")
    assert all(r["alpha_half"] == 2.5 and r["kl(seq||drop)"] > 0 for r in rows)
    assert (mt / "rdrop" / "export" / "export.json").is_file()
    assert all(r["alpha"] == 0.0 for r in records(mt / "em_alpha0"))
    cfg = yaml.safe_load((mt / "em_lambda0.3" / "config.yaml").read_text())
    assert cfg["peers"]["em"]["model"]["mask_prob"] == 0.3


def test_a_rerun_trains_nothing(tiny):
    proc = reproduce("--task", "mt", "--scale", "tiny", "--out", str(tiny), "--sweep", "none",
                     "--results", str(tiny / "again"))  # fmt: skip
    assert " | " not in proc.stdout  # no training log line
    assert "exported" not in proc.stdout and "eval/test.json" not in proc.stdout  # nor decoding
    assert (tiny / "again.md").is_file()


@pytest.mark.parametrize("task", ["asr", "mt"])
def test_paper_configuration_starts(task, tiny, tmp_path):
    """The paper's sizes (Conformer-CTC 16 x d 176; the IWSLT'14 Transformer) for two updates on
    the tiny corpora standing in for LibriSpeech and IWSLT'14 (validation on 4 sentences)."""
    data = tiny / "data" / ("fsdd-connected-300" if task == "asr" else "multi30k-text-300")
    out = tmp_path / "paper"
    reproduce("--task", task, "--scale", "paper", "--data", str(data), "--out", str(out),
              "--methods", "em", "--max-steps", "2", "--no-test", "--",
              "data.limit_dev=4")  # fmt: skip
    sub = "fsdd-connected" if task == "asr" else "de-en"
    run = out / "paper-max2" / task / sub / "s1" / "em"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["peers"]["seq"]["model"]["size"] == "paper"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == 2
