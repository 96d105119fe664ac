import os

import pytest
import sacrebleu

from peerseq.metrics.bleu import bleu, chrf, paired_bootstrap

REFS = [
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dog",
    "it is raining again today",
    "we will meet at the station at noon",
]
GOOD = [
    "the cat sat on the mat",
    "a quick brown fox jumped over the lazy dog",
    "it is raining again today",
    "we meet at the station at noon",
]
BAD = ["cat mat", "fox dog", "raining", "station noon"]


def test_bleu_matches_sacrebleu_and_returns_signature():
    score, sig = bleu(REFS, GOOD)
    assert score == pytest.approx(sacrebleu.corpus_bleu(GOOD, [REFS]).score)
    assert "nrefs:1" in sig and "tok:13a" in sig and "version:" in sig
    assert bleu(REFS, REFS)[0] == pytest.approx(100.0)


def test_multiple_reference_streams():
    score, sig = bleu([REFS, GOOD], GOOD)
    assert score == pytest.approx(100.0)
    assert "nrefs:2" in sig


def test_chrf():
    score, sig = chrf(REFS, GOOD)
    assert score == pytest.approx(sacrebleu.corpus_chrf(GOOD, [REFS]).score)
    assert sig.startswith("nrefs:1") and "nc:6" in sig
    assert "nw:2" in chrf(REFS, GOOD, word_order=2)[1]


def test_paired_bootstrap():
    refs, good, bad = REFS * 10, GOOD * 10, BAD * 10
    before = os.environ.get("SACREBLEU_SEED")
    res = paired_bootstrap(refs, bad, good, n=200, seed=7)
    assert res.score_b > res.score_a and res.p_value < 0.05
    assert "bs:200" in res.signature and "seed:7" in res.signature
    assert res == paired_bootstrap(refs, bad, good, n=200, seed=7)  # reproducible
    assert os.environ.get("SACREBLEU_SEED") == before
    close = list(good)
    close[1] = "a quick brown fox jumps over a lazy dog"
    close[4] = "the cat sat on a mat"
    assert paired_bootstrap(refs, good, close, n=200, seed=7).p_value > 0.05
    assert paired_bootstrap(refs, bad, good, n=100, metric="chrf").score_b > 50
    with pytest.raises(ValueError):
        paired_bootstrap(refs, bad, good, seed=0)


def test_paired_bootstrap_of_identical_systems_is_p_1():
    # sacreBLEU alone gives two identical systems p = 1/(n+1): "significantly different"
    refs, good = REFS * 10, GOOD * 10
    same = paired_bootstrap(refs, good, list(good), n=200, seed=7)
    assert same.score_a == same.score_b and same.p_value == 1.0
    assert paired_bootstrap(refs, good, good, n=200, metric="chrf").p_value == 1.0
