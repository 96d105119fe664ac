import pytest

from peerseq.metrics.asr import ErrorCounts, cer, error_counts, wer


def test_wer_is_corpus_level_percentage():
    refs = ["a b c d", "e f"]
    hyps = ["a x c", "e f g"]  # 1 sub + 1 del, 1 ins over 6 words
    assert wer(refs, hyps) == pytest.approx(50.0)
    c = error_counts(refs, hyps)
    assert (c.substitutions, c.deletions, c.insertions, c.ref_len) == (1, 1, 1, 6)


def test_empty_hypotheses_and_references():
    assert wer(["a b", "c"], ["", ""]) == pytest.approx(100.0)
    assert wer(["", "a"], ["x", "a"]) == pytest.approx(100.0)  # one insertion over one word
    assert wer([""], [""]) == 0.0
    assert wer([""], ["x"]) == float("inf")
    assert wer([], []) == 0.0


def test_cer_counts_spaces():
    assert cer(["ab c"], ["ab"]) == pytest.approx(50.0)  # ' ' and 'c' deleted of 4 chars
    assert cer(["abcd"], ["abxd"]) == pytest.approx(25.0)


def test_counts_pool_across_shards():
    a = error_counts(["a b"], ["a"])
    b = error_counts(["c d e f"], ["c d e f"])
    assert (a + b).rate == pytest.approx(wer(["a b", "c d e f"], ["a", "c d e f"]))
    assert isinstance(a + b, ErrorCounts)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        wer(["a"], [])


def test_paired_bootstrap_rate_tells_a_real_difference_from_none():
    from peerseq.metrics.asr import paired_bootstrap_rate

    refs = [f"one two three {i}" for i in range(60)]
    good = list(refs)
    bad = [r.replace("two", "too") for r in refs]  # one substitution in four words
    t = paired_bootstrap_rate(refs, bad, good, n=200)
    assert t.rate_a == 25.0 and t.rate_b == 0.0 and t.p_value < 0.01
    same = paired_bootstrap_rate(refs, bad, bad, n=200)
    assert same.rate_a == same.rate_b and same.p_value == 1.0
    even = [g if i % 2 else b for i, (g, b) in enumerate(zip(good, bad, strict=True))]
    odd = [b if i % 2 else g for i, (g, b) in enumerate(zip(good, bad, strict=True))]
    mixed = paired_bootstrap_rate(refs, even, odd, n=200)
    assert mixed.rate_a == mixed.rate_b and mixed.p_value > 0.5  # as many errors, elsewhere
