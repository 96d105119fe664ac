"""What a recipe commits of its runs (`recipes/NAME/logs/SCALE/...`, ../shared/EVIDENCE.md): the
small files its results page is written from, never weights or checkpoints, and only of runs
that have been decoded on the test split."""

from __future__ import annotations

import json
from pathlib import Path

from peerseq.files import atomic_write_bytes
from peerseq.rundir.layout import RunDir


def test_sets(run: Path) -> list[Path]:
    """The decoded test sets of run: RUN/eval/*.test.jsonl, its export's, and, for a cascade's
    directory (no run), *.test.jsonl at its top."""
    dirs = (run, RunDir(run).eval, RunDir(RunDir(run).export).eval)
    return [f for d in dirs for f in sorted(d.glob("*.test.jsonl"))]


# What differs between two trainings of one run that are otherwise bit-identical: when each
# record was written and how long validation took. The "start" records say where and when each
# stretch of a run trained (a resumed run has several), so they are left out of the comparison.
TIMING_FIELDS = frozenset({"time", "valid_seconds", "valid_share"})


def same_training(old: bytes, new: bytes) -> bool:
    """Whether two metrics.jsonl logs record the same training: every record but the "start"
    ones equal, timings (TIMING_FIELDS) aside. A run retrained bit-identically (a shared ASR or
    MT model, trained again on a machine that lost its work tree) is the same training."""

    def records(log: bytes) -> list[dict]:
        out = []
        for line in log.decode("utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("split") != "start":
                    out.append({k: v for k, v in r.items() if k not in TIMING_FIELDS})
        return out

    try:
        return records(old) == records(new)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def keep_logs(run: Path, dst: Path) -> None:
    """Copy what a results page is written from, and nothing large, to dst (a recipe's logs,
    committed): config.yaml, metrics.jsonl, the decoded test sets (`test_sets`), what the page
    computed from the weights (analyses/*.json, the run's and its export's) and the export's
    export.json (paper 002 reports the exported model). A committed metrics.jsonl is kept when
    the run's records the same training (`same_training`): the committed log keeps the times
    and machine of the run the notes describe, and the diff stays empty."""
    src, export = RunDir(run), RunDir(RunDir(run).export)
    files = [src.config, src.metrics, export.export_record, *test_sets(run)]
    files += sorted(src.analyses.glob("*.json")) + sorted(export.analyses.glob("*.json"))
    for f in files:
        if f.is_file():
            data, kept = f.read_bytes(), dst / f.relative_to(run)
            if f == src.metrics and kept.is_file() and same_training(kept.read_bytes(), data):
                continue
            # atomic: another lane's reproduce may be copying the same run at the same moment
            atomic_write_bytes(kept, data)


def decoded_on_test(run: Path) -> bool:
    """Whether run (a run, or a cascade's directory) holds a decoded test set: what a results
    page is written from. A run still training beside this command (another seed's lane, or one
    stopped by a session's end) has none yet, and its partial curve is not a result to commit."""
    return bool(test_sets(run))
