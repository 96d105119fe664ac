"""Summaries of the runs a recipe trained, from their logs."""

from __future__ import annotations

from pathlib import Path

from peerseq.rundir.layout import RunDir
from peerseq.rundir.log import read_metrics


def logged_runs(seed_dir: str | Path) -> list[tuple[Path, list[dict], list[dict], float]]:
    """(run dir, train records, dev records, wall-clock minutes) of every run under seed_dir
    with a metrics.jsonl and at least one training record, in name order (recipes' logs)."""
    out = []
    for run in sorted(p for p in Path(seed_dir).iterdir() if RunDir(p).metrics.is_file()):
        recs = read_metrics(RunDir(run).metrics)
        train = [r for r in recs if r["split"] == "train"]
        if not train:
            continue
        times = [r["time"] for r in recs if "time" in r]
        minutes = (times[-1] - times[0]) / 60 if len(times) > 1 else 0.0
        out.append((run, train, [r for r in recs if r["split"] == "dev"], minutes))
    return out
