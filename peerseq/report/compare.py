"""Comparing systems over seeds: scores, mean and spread, paired bootstrap tests, Markdown.

A system is a label and one decoded test set per seed (`STEM.jsonl` from `peerseq evaluate`,
`decode` or `cascade`: {"id", "hyp", "ref"} per line). Outputs are paired by utterance id, so
two systems are only compared on the same utterances with the same references.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from peerseq.decoding.outputs import read_outputs
from peerseq.decoding.peer import Decoded
from peerseq.errors import PeerseqError
from peerseq.metrics.asr import paired_bootstrap_rate
from peerseq.metrics.bleu import paired_bootstrap
from peerseq.metrics.score import higher_is_better, score


@dataclass
class SystemScores:
    """One system's scores: {seed: score}, their mean and sample standard deviation."""

    label: str
    scores: dict[int, float] = field(default_factory=dict)
    n: int = 0  # utterances scored (per seed)
    signature: str = ""

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.scores.values()) if self.scores else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.scores.values()) if len(self.scores) > 1 else None

    def to_json(self) -> dict:
        return {
            "scores": {str(k): round(v, 2) for k, v in sorted(self.scores.items())},
            "mean": None if self.mean is None else round(self.mean, 2),
            "std": None if self.std is None else round(self.std, 2),
            "n": self.n,
        }


def seeds_of(folder: Path) -> dict[int, Path]:
    """{seed: folder/sSEED} for every sSEED directory of a recipe's runs (OUT/.../s1, s2, ...)."""
    return {
        int(m.group(1)): p
        for p in sorted(Path(folder).glob("s*"))
        if (m := re.fullmatch(r"s(\d+)", p.name)) and p.is_dir()
    }


def _decoded(path: Path) -> Decoded:
    rows = read_outputs(path)
    ids = sorted(rows)
    return Decoded(ids, [rows[i][0] for i in ids], [rows[i][1] for i in ids])


def score_system(label: str, outputs: dict[int, Path], metric: str) -> SystemScores:
    """Score each seed's outputs that exist; missing files are left out (not scored as 0)."""
    out = SystemScores(label)
    for seed, path in sorted(outputs.items()):
        if not Path(path).is_file():
            continue
        decoded = _decoded(Path(path))
        out.scores[seed], out.signature = score(decoded.refs, decoded.hyps, metric)
        out.n = len(decoded.ids)
    return out


@dataclass
class Paired:
    """System against baseline on one seed's outputs (paired bootstrap, sacrebleu)."""

    seed: int
    delta: float  # system - baseline, corpus score
    p_value: float


def paired_test(system: Path, baseline: Path, metric: str, seed: int, n: int = 1000) -> Paired:
    """Paired bootstrap resampling of `system` against `baseline`, 1000 samples: sacreBLEU's
    for BLEU/chrF, peerseq.metrics.asr.paired_bootstrap_rate for WER/CER."""
    a, b = _decoded(Path(baseline)), _decoded(Path(system))
    if a.ids != b.ids or a.refs != b.refs:
        raise PeerseqError(
            f"{system} and {baseline}: not the same utterances and references; cannot pair them"
        )
    if metric in ("wer", "cer"):
        unit = "word" if metric == "wer" else "char"
        t = paired_bootstrap_rate(a.refs, a.hyps, b.hyps, unit=unit, n=n)
        return Paired(seed, t.rate_b - t.rate_a, t.p_value)
    res = paired_bootstrap(a.refs, a.hyps, b.hyps, n=n, metric=metric)
    return Paired(seed, res.score_b - res.score_a, res.p_value)


def compare(system: dict[int, Path], baseline: dict[int, Path], metric: str) -> list[Paired]:
    """One paired test per seed both systems have."""
    seeds = [s for s in sorted(system) if s in baseline]
    return [
        paired_test(system[s], baseline[s], metric, seed=s)
        for s in seeds
        if Path(system[s]).is_file() and Path(baseline[s]).is_file()
    ]


def fmt_score(s: SystemScores) -> str:
    if s.mean is None:
        return "—"
    if s.std is None:
        return f"{s.mean:.2f}"
    return f"{s.mean:.2f} ± {s.std:.2f}"


def fmt_tests(tests: list[Paired], metric: str) -> str:
    """'+1.20 (p=0.01, s1); -0.30 (p=0.40, s2)': better or worse in the metric's direction."""
    if not tests:
        return "—"
    sign = 1 if higher_is_better(metric) else -1
    return "; ".join(f"{sign * t.delta:+.2f} (p={t.p_value:.3f}, s{t.seed})" for t in tests)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
