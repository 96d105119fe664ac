"""The logs tables' time and machine: a run stopped and resumed later is timed over its
stretches of training, not the hours between them, and says where each stretch trained."""

from __future__ import annotations

import json
from pathlib import Path

from peerseq.report.summary import environments, logged_runs, training_minutes, where_trained

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
