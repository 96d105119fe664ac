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
