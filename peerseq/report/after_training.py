"""What `peerseq reproduce` does to a run once it is trained: decode it on the test split, or
export its peer and decode the export (`after_training`), or decode an ASR run's 1-best with an
MT run (`cascade`) -- each only when the weights are newer than the outputs already written."""

from __future__ import annotations

import shutil
from pathlib import Path

from peerseq.rundir.layout import RunDir


def newer(src: Path | None, dst: Path) -> bool:
    """dst missing, or older than src."""
    return not dst.exists() or (src is not None and src.stat().st_mtime > dst.stat().st_mtime)


def _evaluate(run: Path) -> None:
    """Test scores of a run (or of an export, on the corpus of the run it came from)."""
    from peerseq.report.tables import print_scores
    from peerseq.runs import evaluate_run, load_run, source_corpus

    scores = evaluate_run(load_run(run, data=source_corpus(run)), "test")
    print_scores(scores, title=f"{run} (test, best weights)")


def after_training(kind: str, run: Path, spec: dict) -> str | None:
    """Test decoding of the run (`evaluate`) or of its export (`export`), when stale."""
    weights = RunDir(run).last_weights_written()
    if kind == "evaluate" and newer(weights, RunDir(run).scores("test")):
        _evaluate(run)
        return "evaluated"
    export = RunDir(run).export
    if kind == "export" and (
        newer(weights, RunDir(export).export_record) or not RunDir(export).scores("test").is_file()
    ):
        from peerseq.export import export_peer

        shutil.rmtree(export, ignore_errors=True)
        export_peer(run, spec.get("export_peer", "seq"), export)
        _evaluate(export)
        return "exported"
    return None


def cascade(root: Path, r: dict) -> str | None:
    """ASR 1-best of one run into another run's MT, when either is newer than the last one."""
    from peerseq.decoding.outputs import write_outputs
    from peerseq.runs import cascade_split, load_run

    (asr, asr_peer), (mt, mt_peer) = (x.split(":") for x in (r["asr"], r["mt"]))
    out = root / r.get("dir", "cascade") / "cascade.test.jsonl"
    if not any(newer(RunDir(root / d).last_weights_written(), out) for d in (asr, mt)):
        return None
    decoded = cascade_split(
        load_run(root / asr), asr_peer, load_run(root / mt), mt_peer, "test", None
    )
    write_outputs(decoded, out.with_suffix(".hyp"))
    return "decoded"
