"""recipes/st_mutual (paper 000): reproduce.sh at tiny scale end to end, and the paper
configuration starting on a tiny stand-in for MuST-C manifests.

Tiny models learn nothing worth scoring in seconds, so these tests check that every method is
the method it claims to be (frozen teacher, shared decoder, alternating updates, cyclical beta,
pre-trained initialisation, joint vocabulary), that every system is decoded and reported, and that
finished runs are reused, not that one method beats another (results.md does that, at small
scale).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from peerseq.data.manifest import load_split
from peerseq.engine.schedules import Cyclical
from peerseq.rundir.weights import load_weights
from tests.recipes.helpers import reproduce as run_recipe

METHODS = ["asr", "mt", "mt_joint", "e2e", "mtl", "kd", "ml", "ml_joint"]


def reproduce(*args: str):
    return run_recipe("st_mutual", *args)


def weights(run: Path, peer: str) -> dict[str, torch.Tensor]:
    folder = run / "best" if (run / "best").is_dir() else run / "checkpoints" / "latest"
    return load_weights(folder / f"model.{peer}.safetensors")


def same(a: dict, b: dict, prefix: str = "") -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    return bool(keys) and all(torch.equal(a[k], b[k]) for k in keys)


def config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny(m30k_speech_300, tmp_path_factory):
    out = tmp_path_factory.mktemp("st_mutual")
    proc = reproduce("--scale", "tiny", "--corpus", str(m30k_speech_300), "--out", str(out),
                     "--results", str(out / "results"))  # fmt: skip
    return out, proc


def test_tiny_reports_every_system(tiny):
    out, _ = tiny
    report = json.loads((out / "results.json").read_text())["pairs"]["en-de"]
    t1, t2 = report["table1"], report["table2"]
    assert set(t1["systems"]) == {"Cascade", "E2E", "E2E+MTL", "E2E+KD", "E2E+ML", "E2E+ML*"}
    assert set(t2["systems"]) == {"MT", "MT+MTL", "MT+ML", "MT* (joint vocabulary)", "MT+ML*"}
    for table in (t1, t2):
        assert table["n"] == 60 and table["signature"].startswith("nrefs:1|")
        for system in table["systems"].values():
            assert set(system["scores"]) == {"1"} and system["n"] == 60
    # ML against each ST baseline, by paired bootstrap, on seed 1
    for label in ("Cascade", "E2E", "E2E+MTL", "E2E+KD", "E2E+ML*"):
        (test,) = t1["systems"][label]["E2E+ML_vs"]
        ml, base = t1["systems"]["E2E+ML"]["scores"]["1"], t1["systems"][label]["scores"]["1"]
        assert test["seed"] == 1 and test["delta"] == pytest.approx(ml - base, abs=0.02)
    md = (out / "results.md").read_text()
    assert "| E2E+ML |" in md and "training logs" in md


def test_tiny_methods_are_what_they_claim(tiny):
    out, _ = tiny
    root = out / "tiny" / "en-de" / "s1"
    mt = weights(root / "mt", "mt")
    # KD: the pre-trained MT teacher is frozen; ML: the MT peer learns from its starting point
    assert same(weights(root / "kd", "mt"), mt)
    assert not same(weights(root / "ml", "mt"), mt)
    # MTL: one decoder (its embedding is the tied output layer) for both tasks, with loss
    # 1/2 (LC_st + LC_mt); the encoders are the tasks' own
    mtl_st, mtl_mt = weights(root / "mtl", "st"), weights(root / "mtl", "mt")
    assert same(mtl_st, mtl_mt, "decoder.") and not same(mtl_st, mtl_mt, "encoder.layers.0.")
    cfg = config(root / "mtl")
    assert cfg["peers"]["st"]["loss_weight"] == cfg["peers"]["mt"]["loss_weight"] == 0.5
    # ML: alternating updates (each peer's turn logs its own total); beta on the cyclical
    # schedule, C = the updates of one epoch of the ST runs themselves
    for run in ("ml", "ml_joint", "kd"):
        link = config(root / run)["links"][0]
        assert link["kind"] == "kl_symmetric" and link["schedule"] == "cyclical"
        epoch = next(r["step"] for r in records(root / run) if r["split"] == "epoch")
        assert link["C"] == epoch and link["R"] == 0.5
    assert config(root / "ml")["train"]["update"] == "alternating"
    train = [r for r in records(root / "ml") if r["split"] == "train"]
    assert all("st:total" in r and "mt:total" in r for r in train)
    beta = Cyclical(R=0.5, C=config(root / "ml")["links"][0]["C"])
    assert len(train) >= 3 and all(r["beta"] == pytest.approx(beta(r["step"])) for r in train)
    assert len({r["beta"] for r in train}) > 1
    # every ST model starts from the ASR encoder; ML* and MT* use the joint vocabulary
    for run in ("e2e", "mtl", "kd", "ml", "ml_joint"):
        init = config(root / run)["peers"]["st"]["model"]["init_encoder_from"]
        assert init == f"{root / 'asr'}:asr"
    for run in ("mt_joint", "ml_joint"):
        fields = config(root / run)["data"]["fields"]
        assert fields["source"]["tokenizer"] == fields["target"]["tokenizer"] == "spm_en-de"
    lines = (root / "cascade" / "cascade.test.jsonl").read_text().splitlines()
    assert len(lines) == 60 and {"id", "hyp", "ref"} <= set(json.loads(lines[0]))


def test_tiny_rerun_reuses_finished_runs(tiny, m30k_speech_300):
    out, _ = tiny
    root = out / "tiny" / "en-de" / "s1"
    before = (root / "e2e" / "eval" / "test.json").stat().st_mtime_ns
    proc = reproduce("--scale", "tiny", "--methods", "e2e", "--corpus", str(m30k_speech_300),
                     "--out", str(out), "--results", str(out / "again"))  # fmt: skip
    assert proc.stdout.count("(finished)") == 2  # asr and e2e: nothing trained again
    assert (root / "e2e" / "eval" / "test.json").stat().st_mtime_ns == before


def test_paper_configuration_starts_on_stand_in_manifests(m30k_speech_300, tmp_path):
    """MuST-C's shape (lhotse manifests per split, translations in custom fields) stood in for
    by 40/8/8 multi30k-speech cuts; the paper's models (12/6 layers, d 512) take two updates."""
    paths = {}
    for split, n in (("train", 40), ("dev", 8), ("test", 8)):
        paths[split] = tmp_path / f"mustc_{split}.jsonl.gz"
        load_split(m30k_speech_300, split).subset(first=n).to_file(paths[split])
    corpus = ",".join(f"{k}={v}" for k, v in paths.items())
    out = tmp_path / "out"
    reproduce("--scale", "paper", "--corpus", corpus, "--methods", "ml", "--max-steps", "2",
              "--no-test", "--out", str(out), "--results", str(out / "results"), "--",
              "data.limit_dev=2", "data.max_frames=1500", "data.max_tokens=300")  # fmt: skip
    root = out / "paper-max2" / "en-de" / "s1"  # kept apart from full runs
    for run, peers in (("asr", ["asr"]), ("mt", ["mt"]), ("ml", ["st", "mt"])):
        cfg = config(root / run)
        assert all(cfg["peers"][p]["model"]["size"] == "paper" for p in peers)
        assert records(root / run)[-1]["step"] == 2
    cfg = config(root / "ml")
    assert cfg["links"][0]["C"] == 5000 and cfg["data"]["corpus"] == str(out / "data-paper")
    st = weights(root / "ml", "st")
    # 12 encoder and 6 decoder layers of d 512 (paper 3.2)
    assert st["encoder.layers.11.ffn.0.weight"].shape == (2048, 512)
    assert "decoder.layers.5.ffn.0.weight" in st
