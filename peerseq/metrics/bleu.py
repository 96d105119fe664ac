"""Corpus BLEU and chrF via sacreBLEU, each with the signature a paper table should quote.

Scores are sacreBLEU's 0-100 scale. `refs` is either one reference per hypothesis (a list of
strings) or several reference streams (a list of such lists, each as long as `hyps`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import PairedTest

Refs = Sequence[str] | Sequence[Sequence[str]]


def _streams(refs: Refs) -> list[list[str]]:
    """refs -> sacreBLEU's list of reference streams."""
    if len(refs) > 0 and isinstance(refs[0], str):
        return [list(refs)]  # type: ignore[arg-type]
    return [list(r) for r in refs]


def bleu(
    refs: Refs, hyps: Sequence[str], tokenize: str = "13a", lowercase: bool = False
) -> tuple[float, str]:
    """Corpus BLEU -> (score, signature such as 'nrefs:1|case:mixed|eff:no|tok:13a|...')."""
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    score = metric.corpus_score(list(hyps), _streams(refs)).score
    return score, str(metric.get_signature())


def chrf(refs: Refs, hyps: Sequence[str], word_order: int = 0) -> tuple[float, str]:
    """Corpus chrF (word_order=0) or chrF++ (word_order=2) -> (score, signature)."""
    metric = CHRF(word_order=word_order)
    score = metric.corpus_score(list(hyps), _streams(refs)).score
    return score, str(metric.get_signature())


@dataclass
class PairedResult:
    """Paired bootstrap comparison of system b against baseline a.

    score_*: corpus scores; mean_* and ci_*: bootstrap mean and 95% half-width; p_value:
    probability of a difference at least this large if the systems were equally good.
    """

    score_a: float
    score_b: float
    mean_a: float
    ci_a: float
    mean_b: float
    ci_b: float
    p_value: float
    signature: str


@contextmanager
def _sacrebleu_seed(seed: int | None) -> Iterator[None]:
    # PairedTest reads its seed only from SACREBLEU_SEED (as the sacrebleu CLI sets it)
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = "none" if seed is None else str(seed)
    try:
        yield
    finally:
        if old is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(
    refs: Refs,
    sys_a: Sequence[str],
    sys_b: Sequence[str],
    n: int = 1000,
    seed: int | None = 12345,
    metric: str = "bleu",
) -> PairedResult:
    """Paired bootstrap resampling (Koehn 2004) with sacreBLEU's own implementation
    (`sacrebleu.significance.PairedTest`, test_type 'bs', as `sacrebleu --paired-bs`).

    metric: 'bleu' or 'chrf'. seed: positive int for a reproducible test, None for OS entropy
    (sacreBLEU treats 0 as None, so 0 is refused).

    p is sacreBLEU's, except where the two corpus scores are equal: sacreBLEU counts resampled
    differences strictly greater than the observed one, so two identical systems (a frozen peer
    against the model it was loaded from) would get p = 1/(n+1) and look significantly
    different. With no observed difference every resample differs at least as much: p = 1, the
    convention `paired_bootstrap_rate` uses for WER.
    """
    if seed is not None and seed <= 0:
        raise ValueError("seed must be a positive int or None")
    metrics: dict[str, Metric] = {"bleu": BLEU(), "chrf": CHRF()}
    if metric not in metrics:
        raise ValueError(f"metric must be 'bleu' or 'chrf', not {metric!r}")
    with _sacrebleu_seed(seed):
        test = PairedTest(
            [("a", list(sys_a)), ("b", list(sys_b))],
            {metric: metrics[metric]},
            _streams(refs),
            test_type="bs",
            n_samples=n,
        )
        signatures, scores = test()
    name = next(iter(signatures))  # sacreBLEU renames the metric, e.g. 'BLEU' or 'chrF2'
    res_a, res_b = scores[name]
    p = 1.0 if res_a.score == res_b.score else float(res_b.p_value)
    return PairedResult(
        res_a.score, res_b.score, float(res_a.mean), float(res_a.ci),
        float(res_b.mean), float(res_b.ci), p, str(signatures[name]),
    )  # fmt: skip
