"""Word and character error rates via jiwer, as percentages (0-100; can exceed 100).

Corpus-level: total edits over total reference units, not an average of per-utterance rates.
Texts are compared as given (no case folding or punctuation removal: normalise beforehand);
surrounding and repeated whitespace is ignored for WER. CER counts spaces as characters (jiwer's
default), and an empty hypothesis is all deletions. With no reference units at all the rate is
0 when there are no insertions either, else infinity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer


@dataclass
class ErrorCounts:
    """Edit counts over a corpus; add two to pool shards, read `.rate` for the percentage."""

    substitutions: int
    deletions: int
    insertions: int
    ref_len: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_len

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_len + other.ref_len,
        )


def error_counts(refs: Sequence[str], hyps: Sequence[str], unit: str = "word") -> ErrorCounts:
    """Edit counts of hyps against refs (same length) over words or characters (`unit`)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if len(refs) == 0:
        return ErrorCounts(0, 0, 0, 0)
    if unit == "word":
        out = jiwer.process_words(list(refs), list(hyps))
    elif unit == "char":
        out = jiwer.process_characters(list(refs), list(hyps))
    else:
        raise ValueError(f"unit must be 'word' or 'char', not {unit!r}")
    ref_len = out.hits + out.substitutions + out.deletions
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, ref_len)


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate in percent."""
    return error_counts(refs, hyps, "word").rate


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus character error rate in percent (spaces count as characters)."""
    return error_counts(refs, hyps, "char").rate


@dataclass
class PairedErrorTest:
    """Paired bootstrap of system b against baseline a on an error rate (lower is better)."""

    rate_a: float
    rate_b: float
    p_value: float  # two-sided: a difference at least this large if the systems were equal


def paired_bootstrap_rate(
    refs: Sequence[str],
    hyps_a: Sequence[str],
    hyps_b: Sequence[str],
    unit: str = "word",
    n: int = 1000,
    seed: int = 12345,
) -> PairedErrorTest:
    """Paired bootstrap resampling (Koehn 2004) for WER/CER.

    sacreBLEU's PairedTest (used for BLEU, see peerseq.metrics.bleu) scores only BLEU, chrF and
    TER, so this resamples per-utterance jiwer edit counts itself, with sacreBLEU's convention
    for the p-value: the resampled differences are centred on their mean and
    p = (#{|d_i| >= |observed|} + 1) / (n + 1).
    """
    import numpy as np

    if not len(refs) == len(hyps_a) == len(hyps_b):
        raise ValueError("refs and both systems' hypotheses must have the same length")
    counts = np.array(
        [
            [error_counts([r], [h], unit).errors for h in (ha, hb)]
            + [error_counts([r], [r], unit).ref_len]
            for r, ha, hb in zip(refs, hyps_a, hyps_b, strict=True)
        ],
        dtype=np.float64,
    )  # [N, 3]: errors of a, errors of b, reference units

    def rates(rows: np.ndarray) -> np.ndarray:  # rows [..., N, 3] -> [..., 2]
        total = rows.sum(axis=-2)
        return 100.0 * total[..., :2] / np.maximum(total[..., 2:], 1.0)

    observed = rates(counts)
    rng = np.random.default_rng(seed)
    samples = rates(counts[rng.integers(0, len(counts), size=(n, len(counts)))])
    diffs = samples[:, 1] - samples[:, 0]
    real = observed[1] - observed[0]
    p = (np.sum(np.abs(diffs - diffs.mean()) >= abs(real)) + 1) / (n + 1)
    return PairedErrorTest(float(observed[0]), float(observed[1]), float(p))
