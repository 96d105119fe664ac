"""The training loop end to end on tiny text data: resume after kill -9 is bit-identical,
and the CLI's train/decode/evaluate/average work on the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import yaml

from peerseq.cli import main
from peerseq.config import load_config
from peerseq.experiment import Experiment
from peerseq.rundir.checkpoint import latest_checkpoint
from peerseq.rundir.weights import load_weights
from peerseq.train import train
from tests.crashing import fork_cli


def write_config(tmp: Path, corpus: Path, out: Path, **train) -> Path:
    cfg = {
        "out_dir": str(out),
        "data": {
            "corpus": str(corpus),
            "prepare": {"name": "multi30k", "limit": 64, "vocab_size": 200},
            "fields": {
                "source": {"column": "en", "tokenizer": "spm_en", "sample": True},
                "target": {"column": "de", "tokenizer": "spm_de", "eos": True},
            },
            "max_tokens": 300,
            "limit_dev": 16,
        },
        "peers": {
            "mt": {
                "model": {"preset": "mt_transformer", "size": "tiny"},
                "reads": "source",
                "predicts": "target",
                "decode": {"metric": "bleu", "beam": 2},
            },
        },
        "optim": {"lr": 0.003, "warmup": 5},
        "train": {"max_epochs": 3, "valid_every": 4, "num_threads": 1, "seed": 3, **train},
    }
    path = tmp / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_weights(latest_checkpoint(run) / "model.mt.safetensors")


def test_resume_after_kill_is_bit_identical(tmp_path, m30k_64, whole_run):
    """The run of whole_run (tests/conftest.py), killed (SIGKILL) once its step-4 checkpoint
    is there, then resumed, ends with the same weights."""
    cut = write_config(tmp_path, m30k_64, tmp_path / "cut", log_every=1, max_epochs=2)
    log = tmp_path / "killed.log"
    child = fork_cli(0, 0, ["train", str(cut)], log, wait=False)  # a child of this process
    first = tmp_path / "cut" / "checkpoints" / "step-00000004"
    deadline = time.time() + 120
    while not first.is_dir() and child.running() and time.time() < deadline:
        time.sleep(0.01)
    alive = child.running()
    child.kill()
    assert alive, "the run ended before it could be killed: nothing was tested\n" + log.read_text()
    assert latest_checkpoint(tmp_path / "cut") is not None

    resumed = train(load_config(Experiment, cut, []), resume=True)
    assert resumed.step == 18
    a, b = final_weights(whole_run), final_weights(tmp_path / "cut")
    assert a and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs from the uninterrupted one"


def test_batches_collated_ahead_by_workers_train_the_same_weights(tmp_path, m30k_64, whole_run):
    """data.workers=2 (batches collated in two worker processes, subword sampling included)
    trains exactly what collating in the training process trained (whole_run: workers=0)."""
    cfg = write_config(tmp_path, m30k_64, tmp_path / "ahead", log_every=1, max_epochs=2)
    assert train(load_config(Experiment, cfg, ["data.workers=2"])).step == 18
    a, b = final_weights(whole_run), final_weights(tmp_path / "ahead")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_train_decode_evaluate_average(tmp_path, capsys, m30k_64):
    cfg = write_config(tmp_path, m30k_64, tmp_path / "run", early_stop_peer="mt")
    assert main(["train", str(cfg), "train.max_epochs=2", "train.keep_last=2"]) == 0
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "best" / "best.json").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert any('"split": "dev"' in x and '"mt/bleu"' in x for x in lines)
    assert list((run / "tensorboard").iterdir())
    assert main(["decode", str(run), "--peer", "mt", "--split", "test", "--beam", "2"]) == 0
    out = capsys.readouterr().out
    assert "mt test bleu" in out and "nrefs:1" in out  # sacrebleu's signature is printed
    assert len((run / "decode" / "mt.test.hyp").read_text().splitlines()) == 64
    # --out is the hypotheses file as given; ids and references go beside it, for pairing
    assert main(["decode", str(run), "--peer", "mt", "--out", str(tmp_path / "h.txt")]) == 0
    hyps = (tmp_path / "h.txt").read_text().splitlines()
    rows = [json.loads(x) for x in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert len(rows) == 64  # the test split
    assert [r["hyp"] for r in rows] == hyps and all(r["id"] and r["ref"] for r in rows)
    capsys.readouterr()
    assert main(["average", str(run), "--last", "3"]) == 2  # keep_last=2: never 2 said as 3
    assert "--last 3, but the run kept 2 checkpoints" in capsys.readouterr().err
    assert main(["average", str(run), "--last", "2"]) == 0
    assert "averaged 2 checkpoints (step-" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--weights", "averaged"]) == 0
    assert json.loads((run / "eval" / "test.json").read_text())["mt"]["weights"] == "averaged"
    assert (run / "eval" / "test.json").is_file()


def test_bad_config_exits_2(tmp_path, capsys):
    cfg = write_config(tmp_path, tmp_path / "m30k", tmp_path / "run")
    assert main(["train", str(cfg), "optim.lrr=1"]) == 2
    assert "optim.lrr: unknown key" in capsys.readouterr().err
    assert main(["train", str(cfg), "peers.mt.reads=nope"]) == 2
    assert "peers.mt: field 'nope' is not in data.fields" in capsys.readouterr().err


@pytest.mark.parametrize("update", ["joint", "alternating"])
def test_update_rules_run_through_the_loop(tmp_path, update, m30k_64):
    cfg = write_config(tmp_path, m30k_64, tmp_path / update)
    exp = load_config(Experiment, cfg, [f"train.update={update}", "train.max_steps=3"])
    assert train(exp).step == 3


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.early_stop_peer=nope"], "train.early_stop_peer: no peer 'nope'"),
        (["train.patience=2"], "train.patience needs train.early_stop_peer"),
        (["peers.mt.decode.metric=none", "train.early_stop_peer=mt"], "is not decoded"),
    ],
)
def test_unsupported_combinations_are_refused(tmp_path, capsys, overrides, message):
    cfg = write_config(tmp_path, tmp_path / "m30k", tmp_path / "run")
    assert main(["train", str(cfg), *overrides]) == 2
    assert message in capsys.readouterr().err


def test_epoch_decay_schedule(tmp_path, m30k_64):
    cfg = write_config(tmp_path, m30k_64, tmp_path / "run")
    exp = load_config(
        Experiment,
        cfg,
        [
            "optim.schedule=epoch_decay",
            "optim.name=sgd",
            "optim.lr=0.1",
            "train.max_epochs=2",
            "peers.mt.decode.metric=none",
        ],
    )
    from peerseq.train import Trainer

    trainer = Trainer(exp)
    trainer.fit()
    assert trainer.optimisers["mt"].param_groups[0]["lr"] == pytest.approx(0.1 * 0.95**2)


def test_a_run_stopped_by_max_steps_is_finished_when_run_again(tmp_path, m30k_64):
    # The checkpoint of the last update is written before the loop ends; run again (as
    # `peerseq reproduce` does at every restart) it once trained a step past the budget.
    cfg = write_config(tmp_path, m30k_64, tmp_path / "run")
    exp = load_config(Experiment, cfg, ["train.max_steps=3", "train.valid_every=2"])
    assert train(exp).step == 3
    run = tmp_path / "run"
    records = (run / "metrics.jsonl").read_text()
    last, weights = latest_checkpoint(run), final_weights(run)
    again = load_config(Experiment, cfg, ["train.max_steps=3", "train.valid_every=2"])
    assert train(again, resume=True).step == 3
    assert (run / "metrics.jsonl").read_text() == records  # no start, no step 4, no validation
    assert latest_checkpoint(run) == last
    assert all(torch.equal(weights[k], v) for k, v in final_weights(run).items())
    # a larger budget goes on from there
    longer = load_config(Experiment, cfg, ["train.max_steps=4", "train.valid_every=2"])
    assert train(longer, resume=True).step == 4
