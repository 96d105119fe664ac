"""recipes/em_network (paper 002): a tiny reproduce of both tasks (ASR: plain CTC and the
EM-Network; MT: the EM-Network, one sweep point and seqKD with its teacher), and the paper
configuration's models taking one step.

Tiny models learn nothing worth scoring in seconds, so these tests check that every method is
the method it claims to be (the auxiliary network reads the target and is dropped at export,
alpha and lambda reach the runs, the offline teacher stays frozen, seqKD trains on the teacher's
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
from peerseq.errors import PeerseqError
from peerseq.report.recipe import load_recipe
from peerseq.report.reproduce import Request, plan
from peerseq.runs import decode_split, load_run
from tests.recipes.conftest import EM_TINY
from tests.recipes.helpers import (
    RECIPES,
    experiment,
    paper_step,
    records,
    reproduce,
    run_args,
    stamps,
    weights,
)


def test_every_system_is_reported_from_its_export(em_tiny):
    out, _ = em_tiny
    report = json.loads((out / "results.json").read_text())
    asr, mt = report["asr/fsdd-connected"], report["mt/de-en"]
    # every group's claims at the page's top (EVIDENCE.md's schema); one seed decides nothing
    by_id = {c["id"]: c for c in report["claims"]}
    assert {"em_ctc_vs_ctc", "em_aed_vs_transformer", "em_alpha2_vs_alpha0"} <= set(by_id)
    assert all(c["verdict"] == "inconclusive" for c in by_id.values())
    assert by_id["em_alpha2_vs_alpha0"]["seeds"] == [1]  # both points trained: tested, on seed 1
    assert set(asr["systems"]) == {"ctc", "em"}
    assert set(mt["systems"]) == {"seqkd", "em", "teacher"}
    # EM-Network against each baseline, paired by utterance, seed 1: the test's difference is
    # the difference of the two corpus scores in the table
    for task, metric, methods in ((asr, "wer", ("ctc",)), (mt, "bleu", ("seqkd",))):
        em_score = task["systems"]["em"][metric]["scores"]["1"]
        for method in methods:
            ((test),) = task["systems"][method]["em_vs_this"]
            base = task["systems"][method][metric]["scores"]["1"]
            assert test["seed"] == 1 and abs(test["delta"] - (em_score - base)) < 0.01
    assert set(mt["repetition"]) == {"seqkd", "em", "teacher"}
    assert all(0 <= v["teacher_forced"][0] <= 100 for v in mt["repetition"].values())
    # the sweep's points: alpha 0 and 2, lambda 0.5 (em_sweep is the shared point)
    points = mt["sweep"]["points"]
    assert set(points["alpha"]) == {"0", "2"} and set(points["lambda"]) == {"0.5"}
    assert mt["sweep"]["best"]["alpha"]["separated"] is False  # one seed names no best value
    assert mt["parameters"]["rho"] > 0 and mt["parameters"]["teacher"] > mt["parameters"]["theta"]
    assert asr["parameters"]["teacher"] is None  # no teacher trained for ASR here
    assert asr["systems"]["em"]["parameters"] == asr["systems"]["ctc"]["parameters"]
    assert asr["parameters"]["theta"] == asr["systems"]["ctc"]["parameters"]
    assert asr["posteriorgram"]["utterance"]
    md = (out / "results.md").read_text()
    for heading in ("Table 3", "Table 4", "Figure 3/5", "Figure 4", "Figure 6"):
        assert heading in md
    for png in ("posteriorgram-asr-fsdd-connected", "losses-asr-fsdd-connected",
                "losses-mt-de-en", "sweep-mt-de-en"):  # fmt: skip
        assert (out / "figures" / f"{png}.png").stat().st_size > 10_000
    # what needed the weights is kept in the runs, so a report from copied logs has it too
    assert (
        out / "tiny" / "asr" / "fsdd-connected" / "s1" / "em" / "analyses" / "posteriorgram.json"
    ).is_file()


def test_em_networks_read_the_target_and_are_dropped_at_export(em_tiny):
    out, _ = em_tiny
    for task, sub, term in (
        ("asr", "fsdd-connected", "l2(em,seq)"),
        ("mt", "de-en", "kl(em||seq)"),
    ):
        run = out / "tiny" / task / sub / "s1" / "em"
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


def test_offline_teacher_is_frozen_and_seqkd_learns_its_translations(em_tiny):
    out, _ = em_tiny
    mt = out / "tiny" / "mt" / "de-en" / "s1"
    assert weights(mt / "seqkd", "teacher").keys() == weights(mt / "teacher", "seq").keys()
    for k, v in weights(mt / "seqkd", "teacher").items():
        assert torch.equal(v, weights(mt / "teacher", "seq")[k]), k
    teacher = load_run(mt / "seqkd").peers["teacher"].model
    cache = list((mt / "seqkd" / "pseudo_labels").glob("teacher-*.json"))
    # decoded with the teacher's own settings: beam 4, length penalty 0.6
    (name,) = [p.name for p in cache]
    assert name.startswith(f"teacher-{weights_hash(teacher)}-k1-b4-lp0.6-")
    assert len(json.loads(cache[0].read_text())) == 40  # the training set, translated once
    assert "seq/nll" in records(mt / "seqkd")[0]  # its own loss, on the hypotheses


def test_sweep_and_rdrop_runs_are_what_they_say(em_tiny):
    out, _ = em_tiny
    mt = out / "tiny" / "mt" / "de-en" / "s1"
    assert all(r["alpha"] == 0.0 for r in records(mt / "em_alpha0"))
    _, cfg, overrides = run_args("em_network", "em_lambda0.3", scale="tiny", out=out,
                                 settings={"task": "mt", "sweep": "lambda=0.3"})  # fmt: skip
    step = paper_step(cfg, overrides)  # the sweep point's model, one step (not trained above)
    assert step["exp"].peers["em"].model.mask_prob == 0.3
    _, cfg, overrides = run_args("em_network", "rdrop", scale="tiny", out=out,
                                 settings={"task": "mt"})  # fmt: skip
    step = paper_step(cfg, overrides)  # R-Drop: one model run twice (two dropout masks)
    assert step["parameters"]["drop"] == step["parameters"]["seq"] == step["unique"]
    assert step["exp"].links[0].weight == 2.5 and step["exp"].links[0].kind == "kl_symmetric"


def test_small_sweep_trains_its_own_shared_point_on_a_short_annealed_budget(tmp_path):
    """Figure 6 at small scale: every point, alpha 2 / lambda 0.5 too (em_sweep, beside the
    table's em), trains for 1,085 updates (5 epochs) with the LR annealed to zero at the last; the
    table's em keeps the recipe's 20 epochs and its inverse-sqrt LR."""
    small = dict(scale="small", out=tmp_path, settings={"task": "mt", "sweep": "alpha=0"})
    args = {n: run_args("em_network", n, **small) for n in ("em_aed", "em_sweep", "em_alpha0")}
    assert [run.name for run, _, _ in args.values()] == ["em", "em_sweep", "em_alpha0"]
    em, shared, alpha0 = (overrides for _, _, overrides in args.values())
    budget = ["train.max_epochs=100", "train.max_steps=1085", "optim.schedule=cosine"]
    budget += ["optim.total=1085"]
    assert not set(budget) & set(em) and shared[-4:] == budget
    assert alpha0[-5:] == [*budget, "links.0.weight=0"]
    assert [x for x in shared if "out_dir" not in x] == [
        x for x in em if "out_dir" not in x
    ] + budget
    exps = {n: experiment("em_network", n, **small) for n in ("em_aed", "em_sweep")}
    sweep = exps["em_sweep"]
    assert sweep.optim.total == sweep.train.max_steps == 5 * 217  # 5 epochs of 29,000 pairs
    assert exps["em_aed"].optim.schedule == "inverse_sqrt"
    assert exps["em_aed"].train.max_epochs == 20


def test_the_sweep_alone_trains_its_points_not_the_table_run(tmp_path):
    """--methods sweep: Figure 6's points and their own alpha 2 / lambda 0.5 run, without the
    table's 20-epoch em (another machine may hold it); --methods em still trains both."""
    small = dict(scale="small", out=tmp_path, settings={"task": "mt", "sweep": "alpha=0"})
    rec = load_recipe(RECIPES / "em_network")
    assert plan(rec, Request(methods=["sweep"], **small)).todo == ["em_sweep", "em_alpha0"]
    assert plan(rec, Request(methods=["em"], **small)).todo == ["em_aed", "em_sweep", "em_alpha0"]
    with pytest.raises(PeerseqError, match="unknown 'sweeps'.*sweep"):
        plan(rec, Request(methods=["sweeps"], **small))
    with pytest.raises(PeerseqError, match="'sweep' has no run with these options"):
        plan(rec, Request(methods=["sweep"], scale="small", settings={"task": "asr"}))
    with pytest.raises(PeerseqError, match="no points to train"):
        plan(
            rec, Request(methods=["sweep"], scale="small", settings={"task": "mt", "sweep": "none"})
        )


def test_small_asr_gives_every_student_one_budget_on_all_utterances(tmp_path):
    """ASR at small scale: all 29,000 multi30k-speech utterances, test voices held out, spm_asr
    targets; every system (the shared teacher too) trains for the same number of updates with
    the LR annealed to zero at the last one, and keeps its best dev weights."""
    small = dict(scale="small", out=tmp_path, settings={"task": "asr"})
    names = ("ctc", "em_ctc", "skd", "teacher_ctc")
    exps = {n: experiment("em_network", n, **small) for n in names}
    for e in exps.values():
        assert e.data.corpus == "exp/data/multi30k-speech-29k" and e.data.limit_train is None
        assert e.data.fields["transcript"].tokenizer == "spm_asr"
        assert e.data.prepare["asr_vocab_size"] == 256
        assert e.data.prepare["test_speakers"] == ["m3", "f4", "Annie"]
        assert e.data.drop_last and e.data.num_buckets == 30  # full batches of like lengths
    budgets = {
        (e.train.max_steps, e.train.valid_every, e.train.patience, e.optim.schedule, e.optim.total)
        for e in exps.values()
    }
    assert len(budgets) == 1  # one budget, no early stop, annealed to zero at its end
    steps, valid_every, patience, schedule, total = next(iter(budgets))
    assert steps and patience is None and schedule == "cosine" and total == steps
    assert valid_every < steps


def test_a_rerun_trains_nothing(em_tiny):
    out, _ = em_tiny
    before = stamps(out / "tiny")
    done = reproduce("em_network", scale="tiny", out=out, results=out / "again",
                     settings={"task": "mt", "sweep": "none"}, methods=["em"],
                     extra=EM_TINY)  # fmt: skip
    assert [(d["run"], d["action"]) for d in done] == [("em_aed", "reused")]
    assert stamps(out / "tiny") == before
    assert (out / "again.md").is_file()


def test_two_lanes_of_a_finished_plan_reuse_it_and_both_end(em_tiny, capsys):
    """--lanes 2 on runs that exist: lane 2 (a process of its own) and lane 1 walk the same
    plan, train nothing and both end well; the page is written (twice, atomically)."""
    from peerseq.cli import main

    out, _ = em_tiny
    before = stamps(out / "tiny")
    argv = ["reproduce", str(RECIPES / "em_network"), "--scale", "tiny", "--out", str(out),
            "--results", str(out / "lanes"), "--set", "task=mt", "--set", "sweep=none",
            "--methods", "em", "--lanes", "2", "--", *EM_TINY]  # fmt: skip
    assert main(argv) == 0
    assert stamps(out / "tiny") == before
    log = (out / "tiny" / "lane-2.log").read_text()
    assert "== em (seed 1)" in log and "1 reused" in log
    assert "1 reused" in capsys.readouterr().out
    assert (out / "lanes.md").is_file()


@pytest.mark.parametrize("task", ["asr", "mt"])
def test_paper_configuration_takes_a_step(task, em_tiny):
    """The paper's sizes (Conformer-CTC 16 x d 176; the IWSLT'14 Transformer), one
    forward/backward on the tiny corpora standing in for LibriSpeech and IWSLT'14."""
    out, _ = em_tiny
    data = out / "data" / ("fsdd-connected-300" if task == "asr" else "multi30k-text-300")
    run, cfg, overrides = run_args("em_network", f"em_{'ctc' if task == 'asr' else 'aed'}",
                                   scale="paper", data=str(data), out=out / "paper",
                                   settings={"task": task})  # fmt: skip
    sub = "fsdd-connected" if task == "asr" else "de-en"
    assert run == out / "paper" / "paper" / task / sub / "s1" / "em"
    step = paper_step(cfg, overrides)
    assert step["exp"].peers["seq"].model.size == "paper" and step["loss"] > 0
    assert step["parameters"]["seq"] > (10e6 if task == "asr" else 30e6)
