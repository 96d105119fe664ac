"""What a recipe commits of its runs (`recipes/NAME/logs/SCALE/...`, ../shared/EVIDENCE.md): the
small files its results page is written from, never weights or checkpoints, and only of runs
that have been decoded on the test split."""

from __future__ import annotations

import shutil
from pathlib import Path

from peerseq.rundir.layout import RunDir


def keep_logs(run: Path, dst: Path) -> None:
    """Copy what a results page is written from, and nothing large, to dst (a recipe's logs,
    committed): config.yaml, metrics.jsonl, the decoded test sets (eval/*.test.jsonl), what the
    page computed from the weights (analyses/*.json), and the same of the run's export with its
    export.json (paper 002 reports the exported model). A cascade's directory (no run) holds
    its decoded test set at its top: that is kept too."""
    src, export = RunDir(run), RunDir(RunDir(run).export)
    files = [src.config, src.metrics, export.export_record, *sorted(run.glob("*.test.jsonl"))]
    for d in (src, export):
        files += sorted(d.eval.glob("*.test.jsonl")) + sorted(d.analyses.glob("*.json"))
    for f in files:
        if f.is_file():
            target = dst / f.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)


def decoded_on_test(run: Path) -> bool:
    """Whether run (a run, or a cascade's directory) holds a decoded test set: what a results
    page is written from. A run still training beside this command (another seed's lane, or one
    stopped by a session's end) has none yet, and its partial curve is not a result to commit."""
    export = RunDir(RunDir(run).export)
    return any(
        any(d.glob("*.test.jsonl")) for d in (run, RunDir(run).eval, export.eval) if d.is_dir()
    )
