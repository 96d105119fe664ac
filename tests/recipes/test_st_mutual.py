"""recipes/st_mutual (paper 000): a tiny reproduce of KD, ML (both vocabularies) and the
cascade, and the paper configuration's models taking one step on stand-in MuST-C manifests.

Tiny models learn nothing worth scoring in seconds, so these tests check that every method is
the method it claims to be (frozen teacher, shared decoder, alternating updates, cyclical beta,
pre-trained initialisation shared by every seed, joint vocabulary, the MT control on the ST
runs' batches), that every system is decoded and reported, and that finished runs are reused,
not that one method beats another (results.md does that, at small scale).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from peerseq.build import build_peers
from peerseq.data.manifest import load_split
from peerseq.data.pipeline import Data
from peerseq.engine.schedules import Cyclical
from tests.recipes.conftest import ST_TINY
from tests.recipes.helpers import experiment, paper_step, reproduce, run_args, stamps, weights


def same(a: dict, b: dict, prefix: str = "") -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    return bool(keys) and all(torch.equal(a[k], b[k]) for k in keys)


def config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_tiny_reports_every_system(st_tiny):
    out, done = st_tiny
    # the runs every seed shares first (pre-trained peers, the cascade), then the seed's own
    assert [d["run"] for d in done] == ["asr", "mt", "cascade", "kd", "ml"]
    assert [(d["action"], d.get("test")) for d in done] == [("trained", "evaluated")] * 2 + [
        ("decoded", None)
    ] + [("trained", "evaluated")] * 2
    report = json.loads((out / "results.json").read_text())["pairs"]["en-de"]
    t1, t2 = report["table1"], report["table2"]
    assert set(t1["systems"]) == {"Cascade", "E2E", "E2E+MTL", "E2E+KD", "E2E+ML", "E2E+ML*",
                                  "E2E+ML, joint updates (not Algorithm 1)"}  # fmt: skip
    assert set(t2["systems"]) == {"MT", "MT, trained on alone as long as the ST runs", "MT+MTL",
                                  "MT+ML", "MT* (joint vocabulary)", "MT+ML*",
                                  "MT+ML, joint updates"}  # fmt: skip
    run = {"Cascade", "E2E+KD", "E2E+ML", "MT", "MT+ML"}
    for table in (t1, t2):
        assert table["n"] == 20 and table["signature"].startswith("nrefs:1|")
        for label, system in table["systems"].items():  # a system not run is a row saying so
            assert set(system["scores"]) == ({"1"} if label in run else set()), label
    # ML against each ST baseline that ran, by paired bootstrap, on seed 1
    for label in ("Cascade", "E2E+KD"):
        (test,) = t1["systems"][label]["E2E+ML_vs"]
        ml, base = t1["systems"]["E2E+ML"]["scores"]["1"], t1["systems"][label]["scores"]["1"]
        assert test["seed"] == 1 and test["delta"] == pytest.approx(ml - base, abs=0.02)
    assert t1["systems"]["E2E"]["E2E+ML_vs"] == []
    md = (out / "results.md").read_text()
    assert "| E2E+ML |" in md and "| E2E | — | not run |" in md and "runs, seed 1" in md
    # a verdict per claim (EVIDENCE.md); the cascade and MT, trained once, paired with each seed
    claims = {c["id"]: c for c in json.loads((out / "results.json").read_text())["claims"]}
    assert {"ml_vs_e2e", "mt_ml_vs_mt", "ml_vs_cascade", "alternating_vs_joint"} <= set(claims)
    assert all(c["verdict"] == "inconclusive" for c in claims.values())  # one seed, at the floor
    assert claims["ml_vs_cascade"]["systems"]["Cascade"]["shared"] is True
    assert claims["ml_vs_e2e"]["key"] and claims["mt_ml_vs_mt"]["key"]


def test_tiny_methods_are_what_they_claim(st_tiny):
    out, _ = st_tiny
    root = out / "tiny" / "en-de" / "s1"
    mt = weights(root / "mt", "mt")
    # KD: the pre-trained MT teacher is frozen; ML: the MT peer learns from its starting point
    assert same(weights(root / "kd", "mt"), mt)
    assert not same(weights(root / "ml", "mt"), mt)
    # ML: alternating updates (each peer's turn logs its own total); beta on the cyclical
    # schedule, C = the updates of one epoch of the ASR run (the ST runs' own batches)
    epoch = next(r["step"] for r in records(root / "asr") if r["split"] == "epoch")
    for run in ("ml", "kd"):
        link = config(root / run)["links"][0]
        assert link["kind"] == "kl_symmetric" and link["schedule"] == "cyclical"
        assert link["C"] == epoch and link["R"] == 0.5
        assert epoch == next(r["step"] for r in records(root / run) if r["split"] == "epoch")
    assert config(root / "ml")["train"]["update"] == "alternating"
    train = [r for r in records(root / "ml") if r["split"] == "train"]
    assert all("st:total" in r and "mt:total" in r for r in train)
    beta = Cyclical(R=0.5, C=config(root / "ml")["links"][0]["C"])
    assert len(train) >= 4 and all(r["beta"] == pytest.approx(beta(r["step"])) for r in train)
    assert len({r["beta"] for r in train}) > 1
    # every ST model starts from the ASR encoder and the MT decoder (the runs seed 1 holds for
    # every seed), so that the methods differ only in what the paper varies
    for run in ("kd", "ml"):
        st = config(root / run)["peers"]["st"]["model"]
        assert st["init_encoder_from"] == f"{root / 'asr'}:asr"
        assert st["init_decoder_from"] == f"{root / 'mt'}:mt"
    lines = (root / "cascade" / "cascade.test.jsonl").read_text().splitlines()
    assert len(lines) == 20 and {"id", "hyp", "ref"} <= set(json.loads(lines[0]))


def test_joint_vocabulary_runs_are_configured_as_such(st_tiny, m30k_speech_300):
    """MT* and ML* (not trained above): one sentencepiece vocabulary for source and target,
    ML*'s MT peer from MT*, its ST encoder from the ASR run; C one epoch of the ASR run."""
    out, _ = st_tiny
    root = out / "tiny" / "en-de" / "s1"
    req = dict(scale="tiny", out=out, data=str(m30k_speech_300))
    for run in ("mt_joint", "ml_joint"):
        fields = experiment("st_mutual", run, **req).data.fields
        assert fields["source"].tokenizer == fields["target"].tokenizer == "spm_en-de"
    exp = experiment("st_mutual", "ml_joint", **req)
    assert exp.peers["mt"].model.init_from == f"{root / 'mt_joint'}:mt"
    assert exp.peers["st"].model.init_encoder_from == f"{root / 'asr'}:asr"
    assert exp.peers["st"].model.init_decoder_from == f"{root / 'mt_joint'}:mt"
    epoch = next(r["step"] for r in records(root / "asr") if r["split"] == "epoch")
    assert exp.links[0].C == epoch


def test_every_seed_shares_the_pre_trained_runs_and_the_controls_are_configured(
    st_tiny, m30k_speech_300
):
    """Seed 2's runs start from seed 1's ASR and MT (trained once, EVIDENCE.md allows it and the
    page says so); E2E gets the same initialisation as ML; the MT control trains on the ST runs'
    batches from the pre-trained MT; ml_jrule is ML with joint updates."""
    out, _ = st_tiny
    shared = out / "tiny" / "en-de" / "s1"
    req = dict(scale="tiny", out=out, data=str(m30k_speech_300))
    for run in ("e2e", "ml", "ml_jrule", "kd"):
        st = experiment("st_mutual", run, seed=2, **req).peers["st"].model
        assert st.init_encoder_from == f"{shared / 'asr'}:asr", run
        assert st.init_decoder_from == f"{shared / 'mt'}:mt", run
    cont = experiment("st_mutual", "mt_cont", seed=2, **req)
    assert cont.data.batch_by_frames and cont.peers["mt"].model.init_from == f"{shared / 'mt'}:mt"
    assert list(cont.peers) == ["mt"] and cont.train.seed == 2
    assert experiment("st_mutual", "ml_jrule", seed=2, **req).train.update == "joint"
    assert experiment("st_mutual", "ml", seed=2, **req).train.update == "alternating"
    run, _, _ = run_args("st_mutual", "asr", seed=2, **req)
    assert run == shared / "asr"
    # beta's cycle C is one epoch of the shared ASR run, even beside a stale per-seed one
    epoch = next(r["step"] for r in records(shared / "asr") if r["split"] == "epoch")
    stale = out / "tiny" / "en-de" / "s2" / "asr" / "metrics.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"split": "epoch", "step": epoch + 7, "epoch": 0}) + "\n")
    try:
        assert experiment("st_mutual", "ml", seed=2, **req).links[0].C == epoch
    finally:
        stale.unlink()
        stale.parent.rmdir()
    # the weights, not only the paths: E2E's ST model starts with ASR's encoder, MT's decoder
    exp = experiment("st_mutual", "e2e", seed=2, **req)
    st = build_peers(exp, Data(exp.data, 2))["st"].model.state_dict()
    for run, part in (("asr", "encoder."), ("mt", "decoder.")):
        pre = weights(shared / run, run)
        keys = [k for k in pre if k.startswith(part)]
        assert keys and all(torch.equal(st[k], pre[k]) for k in keys), run


def test_mtl_shares_one_decoder(st_tiny, m30k_speech_300):
    """MTL (not trained above): one decoder for both tasks, loss 1/2 (LC_st + LC_mt); the
    encoders are the tasks' own."""
    out, _ = st_tiny
    step = paper_step(*run_args("st_mutual", "mtl", scale="tiny", out=out,
                                data=str(m30k_speech_300))[1:])  # fmt: skip
    exp = step["exp"]
    assert exp.peers["st"].loss_weight == exp.peers["mt"].loss_weight == 0.5
    shared = {n.split(":")[1].split(".")[0] for n in step["shared"]}
    assert shared == {"decoder"} and step["loss"] > 0


def test_tiny_rerun_reuses_finished_runs(st_tiny, m30k_speech_300):
    out, _ = st_tiny
    before = stamps(out / "tiny")
    done = reproduce("st_mutual", scale="tiny", out=out, results=out / "again",
                     data=str(m30k_speech_300), methods=["ml"], extra=ST_TINY)  # fmt: skip
    assert [(d["run"], d["action"]) for d in done] == [("asr", "reused"), ("mt", "reused"),
                                                       ("ml", "reused")]  # fmt: skip
    assert all(d["test"] is None for d in done)  # test decoding is up to date: not redone
    assert stamps(out / "tiny") == before
    assert (out / "again.md").is_file()


def test_paper_configuration_takes_a_step_on_stand_in_manifests(m30k_speech_300, tmp_path):
    """MuST-C's shape (lhotse manifests per split, translations in custom fields) stood in for
    by 40/8/8 multi30k-speech cuts, prepared once into OUT/data-paper; the paper's models (12/6
    layers, d 512) take one forward/backward."""
    paths = {}
    for split, n in (("train", 40), ("dev", 8), ("test", 8)):
        paths[split] = tmp_path / f"mustc_{split}.jsonl.gz"
        load_split(m30k_speech_300, split).subset(first=n).to_file(paths[split])
    corpus = ",".join(f"{k}={v}" for k, v in paths.items())
    out = tmp_path / "out"
    run, cfg, overrides = run_args("st_mutual", "ml", scale="paper", data=corpus, out=out,
                                   max_steps=2)  # fmt: skip
    assert run == out / "paper-max2" / "en-de" / "s1" / "ml"  # kept apart from full runs
    assert f"data.corpus={out / 'data-paper'}" in overrides and "links.0.C=5000" in overrides
    step = paper_step(cfg, overrides + ["data.max_frames=1500", "data.max_tokens=300"])
    exp = step["exp"]
    assert all(exp.peers[p].model.size == "paper" for p in ("st", "mt"))
    assert exp.train.max_steps == 2 and step["loss"] > 0
    # 12 encoder and 6 decoder layers of d 512 (paper 3.2): about 30 M parameters in ST
    assert step["parameters"]["st"] > 25e6


def test_small_budgets_are_annealed_and_one_for_every_st_system(tmp_path):
    """small: the pre-trained peers and every ST system train a fixed number of updates with the
    LR annealed to zero at the last one (no early stop), every ST system the same number; the
    paper scale keeps fairseq's inverse-sqrt LR, epochs and its pre-training's early stop."""
    asr = tmp_path / "small" / "en-de" / "s1" / "asr"  # beta's cycle C: the ASR run's epoch
    asr.mkdir(parents=True)
    (asr / "metrics.jsonl").write_text('{"split": "epoch", "step": 817, "epoch": 1}\n')
    small, st = dict(scale="small", out=tmp_path), ("e2e", "mtl", "mt_cont", "kd", "ml", "ml_jrule")
    exps = {n: experiment("st_mutual", n, **small) for n in ("asr", "mt", "mt_joint", *st)}
    assert exps["ml"].links[0].C == 817
    for e in exps.values():
        assert e.optim.schedule == "cosine" and e.optim.total == e.train.max_steps
        assert e.train.patience is None and e.train.valid_every < e.train.max_steps
    assert len({exps[n].train.max_steps for n in st}) == 1
    assert exps["asr"].train.max_steps > exps["ml"].train.max_steps
    paper = {n: run_args("st_mutual", n, scale="paper", out=tmp_path, data="d")[2] for n in exps}
    for name, overrides in paper.items():
        assert "optim.schedule=inverse_sqrt" in overrides and "train.max_steps=null" in overrides
        assert ("train.patience=5" in overrides) == (name in ("asr", "mt", "mt_joint")), name
