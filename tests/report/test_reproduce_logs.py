"""peerseq.report.reproduce.keep_logs: what a recipe commits of a run is what its results page
is written from (config, metrics, decoded test sets), never weights or checkpoints."""

from __future__ import annotations

from peerseq.report.reproduce import keep_logs
from peerseq.rundir.layout import RunDir


def test_keep_logs_copies_the_small_files_only(tmp_path):
    run = RunDir(tmp_path / "runs" / "s1" / "students")
    for f in (
        run.config,
        run.metrics,
        run.outputs("a", "test"),
        run.outputs("a", "dev"),
        run.checkpoints / "step-90" / "model.a.safetensors",
        run.best / "best.json",
    ):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f.name)
    dst = tmp_path / "logs" / "s1" / "students"
    keep_logs(run.root, dst)
    kept = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert kept == ["config.yaml", "eval/a.test.jsonl", "metrics.jsonl"]
    assert (dst / "eval" / "a.test.jsonl").read_text() == "a.test.jsonl"
