"""What a run says: the start-up summary and why it ended, in RUN/train.log too; the learning
rates in metrics.jsonl; infeasible CTC rows once an epoch."""

from __future__ import annotations

import json

from peerseq.config import load_config
from peerseq.experiment import Experiment
from peerseq.losses.ctc import InfeasibleTally
from peerseq.train import train
from peerseq.training_console import infeasible_line
from tests.test_train import write_config


def test_the_run_says_what_it_trains_and_why_it_stopped(tmp_path, m30k_64, capsys):
    cfg = write_config(
        tmp_path,
        m30k_64,
        tmp_path / "run",
        early_stop_peer="mt",
        patience=1,
        max_epochs=6,
        log_every=1,
    )
    state = train(load_config(Experiment, cfg, []))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "peerseq train" in log and "device cpu" in log
    assert "peer mt: mt_transformer (tiny)" in log and "parameters" in log and "trains" in log
    assert "training items in" in log and "updates an epoch" in log and "dev items" in log
    assert (
        log == capsys.readouterr().out.replace("\x1b", "") or "step " in log
    )  # the console's text
    # patience 1 on a tiny model (seed 3): a validation without a better BLEU ends it, said so
    assert state.epoch < 6 and "early stopping: no better dev mt/bleu in 1 validations" in log
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    trains = [r for r in rows if r["split"] == "train"]
    assert trains and all(0 < r["lr:mt"] <= 0.003 for r in trains)


def test_infeasible_rows_are_said_once_an_epoch_with_advice():
    short = [("fsdd-3-a", 6, 9, 40), ("fsdd-8-b", 5, 7, 36)] * 2  # one row met in two steps
    tally = InfeasibleTally(bad=37, rows=300, calls=12, short=short)
    line = infeasible_line(4, tally)
    assert line.startswith("epoch 4: CTC left 37 of 300 rows out of the loss in 12 batches")
    assert "fsdd-3-a (6 frames for 9), fsdd-8-b (5 frames for 7)." in line
    assert "data.min_seconds" in line and "subsampling at most 4x would fit them all" in line
    assert infeasible_line(5, tally) is None  # taken: the next epoch starts from zero
    assert tally.short == []
