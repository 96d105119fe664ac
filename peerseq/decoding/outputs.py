"""Hypothesis files: what `peerseq decode`/`evaluate` write and `peerseq.report.compare` pairs
across systems by utterance id."""

from __future__ import annotations

import json
from pathlib import Path

from peerseq.decoding.peer import Decoded
from peerseq.errors import PeerseqError


def write_outputs(decoded: Decoded, hyp_path: Path) -> Path:
    """hyp_path: one hypothesis per line (decoding order); beside it, hyp_path with suffix
    .jsonl: {"id", "hyp", "ref"} per line, what `peerseq.report.compare` pairs across systems by
    utterance id. Returns the .jsonl path."""
    hyp_path = Path(hyp_path)
    hyp_path.parent.mkdir(parents=True, exist_ok=True)
    hyp_path.write_text("\n".join(decoded.hyps) + "\n")
    jsonl = hyp_path.with_suffix(".jsonl")
    with jsonl.open("w", encoding="utf-8") as f:
        for i, h, r in zip(decoded.ids, decoded.hyps, decoded.refs, strict=True):
            f.write(json.dumps({"id": i, "hyp": h, "ref": r}, ensure_ascii=False) + "\n")
    return jsonl


def read_outputs(path: str | Path) -> dict[str, tuple[str, str]]:
    """A STEM.jsonl written by write_outputs -> {id: (hyp, ref)}."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            out[row["id"]] = (row["hyp"], row["ref"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise PeerseqError(f'{path}:{n}: expected {{"id", "hyp", "ref"}}') from None
    return out
