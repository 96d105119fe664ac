"""One entry to the metrics by name: BLEU and chrF (sacrebleu, with its signature), WER and CER
(jiwer); which direction is better; what a system that ignores its input would score."""

from __future__ import annotations

import random
from collections import Counter

from peerseq.metrics.asr import cer, wer
from peerseq.metrics.bleu import bleu, chrf


def score(refs: list[str], hyps: list[str], metric: str) -> tuple[float, str]:
    """-> (score, description) of hyps against refs; BLEU's description is sacrebleu's
    signature."""
    if metric == "bleu":
        return bleu(refs, hyps)
    if metric == "chrf":
        return chrf(refs, hyps)
    if metric == "wer":
        return wer(refs, hyps), "wer (jiwer)"
    if metric == "cer":
        return cer(refs, hyps), "cer (jiwer)"
    raise ValueError(f"unknown metric {metric!r}")


def higher_is_better(metric: str) -> bool:
    return metric in ("bleu", "chrf")


def chance_score(refs: list[str], train_texts: list[str], metric: str, seed: int = 0) -> float:
    """What a system that ignores its input scores on refs: BLEU of randomly drawn training
    targets (fluent, unrelated), or WER/CER of the most frequent training transcript. A model
    that does not beat this has learnt nothing about its input."""
    if metric in ("bleu", "chrf"):
        rng = random.Random(seed)
        return score(refs, [rng.choice(train_texts) for _ in refs], metric)[0]
    common = Counter(train_texts).most_common(1)[0][0]
    return score(refs, [common] * len(refs), metric)[0]
