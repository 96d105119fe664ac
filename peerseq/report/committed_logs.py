"""What a recipe commits of its runs (`recipes/NAME/logs/SCALE/...`, ../shared/EVIDENCE.md): the
small files its results page is written from, never weights or checkpoints, and only of runs
that have been decoded on the test split."""

from __future__ import annotations

from pathlib import Path

from peerseq.files import atomic_write_bytes
from peerseq.rundir.layout import RunDir


def test_sets(run: Path) -> list[Path]:
    """The decoded test sets of run: RUN/eval/*.test.jsonl, its export's, and, for a cascade's
    directory (no run), *.test.jsonl at its top."""
    dirs = (run, RunDir(run).eval, RunDir(RunDir(run).export).eval)
    return [f for d in dirs for f in sorted(d.glob("*.test.jsonl"))]


def keep_logs(run: Path, dst: Path) -> None:
    """Copy what a results page is written from, and nothing large, to dst (a recipe's logs,
    committed): config.yaml, metrics.jsonl, the decoded test sets (`test_sets`), what the page
    computed from the weights (analyses/*.json, the run's and its export's) and the export's
    export.json (paper 002 reports the exported model)."""
    src, export = RunDir(run), RunDir(RunDir(run).export)
    files = [src.config, src.metrics, export.export_record, *test_sets(run)]
    files += sorted(src.analyses.glob("*.json")) + sorted(export.analyses.glob("*.json"))
    for f in files:
        if f.is_file():
            # atomic: another lane's reproduce may be copying the same run at the same moment
            atomic_write_bytes(dst / f.relative_to(run), f.read_bytes())


def decoded_on_test(run: Path) -> bool:
    """Whether run (a run, or a cascade's directory) holds a decoded test set: what a results
    page is written from. A run still training beside this command (another seed's lane, or one
    stopped by a session's end) has none yet, and its partial curve is not a result to commit."""
    return bool(test_sets(run))
