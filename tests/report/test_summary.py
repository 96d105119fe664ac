"""The logs tables' time, machine and start: a run stopped and resumed later is timed over its
stretches of training, not the hours between them, and says where each stretch trained; the
runs say which weights they started from, and a name that stood for two sets of weights is
flagged with the runs of each."""

from __future__ import annotations

import json
from pathlib import Path

from peerseq.report.summary import (
    environments,
    logged_runs,
    seq_curve,
    started_from,
    training_minutes,
    where_trained,
)

EPYC = {"machine": "AMD EPYC, 2 cores, no native bf16", "precision": "fp32"}
XEON = {"machine": "Intel Xeon, 2 cores, native bf16", "precision": "bf16"}


def stretch(t0: float, steps: range, env: dict) -> list[dict]:
    start = {"split": "start", "step": steps.start - 1, "epoch": 0, "time": t0} | env
    return [start] + [
        {"split": "train", "step": s, "epoch": 0, "time": t0 + 60 * i, "total": 1.0}
        for i, s in enumerate(steps, start=1)
    ]


def write_run(seed_dir: Path, name: str, records: list[dict]) -> None:
    (seed_dir / name).mkdir(parents=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (seed_dir / name / "metrics.jsonl").write_text(lines)


def test_a_resumed_run_is_timed_over_its_stretches_and_names_both_machines(tmp_path):
    day = 86_400.0
    resumed = stretch(0.0, range(1, 11), EPYC) + stretch(day, range(9, 21), XEON)
    assert training_minutes(resumed) == 10 + 12  # not a day
    assert environments(resumed) == [
        "AMD EPYC, 2 cores, no native bf16, fp32",
        "Intel Xeon, 2 cores, native bf16, bf16",
    ]
    old = [r for r in resumed[:11] if r["split"] != "start"]  # logs before start records
    assert training_minutes(old) == 9 and environments(old) == []

    write_run(tmp_path / "s1", "ml", resumed)
    write_run(tmp_path / "s1", "e2e", stretch(0.0, range(1, 6), EPYC))
    assert [(r.name, m) for r, _, _, m in logged_runs(tmp_path / "s1")] == [("e2e", 5), ("ml", 22)]
    assert where_trained([tmp_path / "s1"]) == (
        "Trained on: AMD EPYC, 2 cores, no native bf16, fp32: e2e, ml; "
        "Intel Xeon, 2 cores, native bf16, bf16: ml."
    )


def init(sha: str) -> dict:
    """A start record's `init`: the ST peer's encoder from the shared ASR run's weights."""
    return {"st.init_encoder_from": {"from": "exp/r/small/en-de/s1/asr:asr", "sha256": sha * 16}}


def test_the_runs_say_which_weights_they_started_from(tmp_path):
    first, second = init("a1b2"), init("ffff")
    ok = [{"split": "start", "step": 0, "epoch": 0, "time": 0.0, "init": first} | EPYC]
    write_run(tmp_path / "s1", "e2e", ok + stretch(0.0, range(1, 3), EPYC)[1:])
    write_run(tmp_path / "s2", "e2e", ok + stretch(0.0, range(1, 3), EPYC)[1:])
    write_run(tmp_path / "s2", "plain", stretch(0.0, range(1, 3), EPYC))  # no init: not named
    seeds = [tmp_path / "s1", tmp_path / "s2"]
    assert started_from(seeds) == "Started from (SHA-256): s1/asr:asr a1b2a1b2a1b2 (2 runs)."

    # the shared ASR trained again (its folder lost) and a third seed started from that one
    redo = [{"split": "start", "step": 0, "epoch": 0, "time": 0.0, "init": second} | XEON]
    write_run(tmp_path / "s3", "e2e", redo + stretch(0.0, range(1, 3), XEON)[1:])
    line = started_from(seeds + [tmp_path / "s3"])
    assert line.startswith("Started from (SHA-256): **s1/asr:asr names 2 different sets")
    assert "a1b2a1b2a1b2: s1/e2e, s2/e2e; ffffffffffff: s3/e2e" in line
    # a resumed run's later start records do not count twice
    write_run(tmp_path / "s4", "e2e", ok + stretch(0.0, range(1, 3), EPYC)[1:] + redo)
    assert started_from([tmp_path / "s4"]) == (
        "Started from (SHA-256): s1/asr:asr a1b2a1b2a1b2 (1 run)."
    )


def test_a_budget_that_is_no_multiple_of_log_every_counts_its_last_updates(tmp_path):
    """1,085 updates logged every 25: the last training record is update 1,075, the final
    validation update 1,085, and the table says 1,085."""
    train = stretch(0.0, range(25, 1076, 25), XEON)
    dev = {"split": "dev", "step": 1085, "epoch": 4, "time": 1e5, "seq/bleu": 31.4}
    write_run(tmp_path / "s1", "em_sweep", train + [dev])
    assert seq_curve(tmp_path / "s1", ["bleu"])[0][:2] == ["em_sweep", "1085"]
