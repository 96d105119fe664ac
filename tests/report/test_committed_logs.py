"""peerseq.report.committed_logs.keep_logs: what a recipe commits of a run is what its results page
is written from (config, metrics, decoded test sets), never weights or checkpoints."""

from __future__ import annotations

import json

from peerseq.report.committed_logs import decoded_on_test, keep_logs
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


def test_keep_logs_keeps_the_export_and_what_was_computed_from_weights(tmp_path):
    """Paper 002 reports the exported model: its decoded test set, its export.json (parameters)
    and the analyses the page computed from weights are kept; its weights are not."""
    run = RunDir(tmp_path / "runs" / "s1" / "em")
    export = RunDir(run.export)
    for f in (
        run.config,
        run.metrics,
        run.analyses / "parameters.json",
        export.export_record,
        export.outputs("seq", "test"),
        export.analyses / "teacher_forced_repetition.json",
        export.root / "model.seq.safetensors",
    ):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f.name)
    dst = tmp_path / "logs" / "s1" / "em"
    keep_logs(run.root, dst)
    kept = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert kept == [
        "analyses/parameters.json",
        "config.yaml",
        "export/analyses/teacher_forced_repetition.json",
        "export/eval/seq.test.jsonl",
        "export/export.json",
        "metrics.jsonl",
    ]


def test_keep_logs_keeps_a_cascades_decoded_test_set(tmp_path):
    """A cascade (ASR 1-best into MT) is no run: its directory holds only what it decoded."""
    cascade = tmp_path / "runs" / "s1" / "cascade"
    cascade.mkdir(parents=True)
    for name in ("cascade.test.jsonl", "cascade.test.hyp"):
        (cascade / name).write_text(name)
    dst = tmp_path / "logs" / "s1" / "cascade"
    keep_logs(cascade, dst)
    assert sorted(p.name for p in dst.iterdir()) == ["cascade.test.jsonl"]


def test_only_runs_decoded_on_test_are_kept(tmp_path):
    """A run still training (another lane's, or one a session's end stopped) has a partial curve
    and no test set: `reproduce` must not commit it beside the finished ones."""
    finished, training = RunDir(tmp_path / "ml"), RunDir(tmp_path / "e2e")
    exported, cascade = RunDir(tmp_path / "em"), tmp_path / "cascade"
    for f in (
        finished.metrics,
        finished.outputs("st", "test"),
        training.metrics,
        training.outputs("st", "dev"),
        exported.metrics,
        RunDir(exported.export).outputs("seq", "test"),
        cascade / "cascade.test.jsonl",
    ):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f.name)
    assert [decoded_on_test(r) for r in (finished.root, exported.root, cascade)] == [True] * 3
    assert not decoded_on_test(training.root)
    assert not decoded_on_test(tmp_path / "absent")


def _log(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_a_retrained_run_keeps_its_committed_log(tmp_path):
    """A shared run trained again bit-identically (a new machine lost the work tree) differs
    only in its times and start records: the committed log, which the notes describe, stays."""
    start = {"split": "start", "step": 0, "time": 1.0, "machine": "A"}
    dev = {"split": "dev", "step": 250, "time": 9.0, "mt/bleu": 30.1, "valid_seconds": 4.7}
    committed = _log(start, {"split": "train", "step": 25, "time": 2.0, "total": 5.2}, dev)
    run = RunDir(tmp_path / "runs" / "mt")
    run.root.mkdir(parents=True)
    run.metrics.write_bytes(
        _log(
            {**start, "time": 50.0, "machine": "B"},
            {"split": "train", "step": 25, "time": 52.0, "total": 5.2},
            {**dev, "time": 60.0, "valid_seconds": 5.1},
        )
    )
    dst = tmp_path / "logs" / "mt"
    dst.mkdir(parents=True)
    (dst / "metrics.jsonl").write_bytes(committed)
    keep_logs(run.root, dst)
    assert (dst / "metrics.jsonl").read_bytes() == committed


def test_a_run_that_trained_differently_replaces_its_committed_log(tmp_path):
    """One figure apart (a changed config, another machine's arithmetic): the new log is kept."""
    run = RunDir(tmp_path / "runs" / "mt")
    run.root.mkdir(parents=True)
    new = _log({"split": "dev", "step": 250, "time": 60.0, "mt/bleu": 30.2})
    run.metrics.write_bytes(new)
    dst = tmp_path / "logs" / "mt"
    dst.mkdir(parents=True)
    (dst / "metrics.jsonl").write_bytes(
        _log({"split": "dev", "step": 250, "time": 9.0, "mt/bleu": 30.1})
    )
    keep_logs(run.root, dst)
    assert (dst / "metrics.jsonl").read_bytes() == new
