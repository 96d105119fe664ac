import pytest

from peerseq.metrics.repetition import token_repetition_ratio


def test_counts_repeats_over_all_tokens():
    hyps = [[5, 5, 5, 6], [7, 8, 8], [9]]  # 2 + 1 repeats over 8 tokens
    assert token_repetition_ratio(hyps) == pytest.approx(100 * 3 / 8)
    assert token_repetition_ratio(hyps, count_first=True) == pytest.approx(100 * 5 / 8)


def test_strings_are_split_on_whitespace():
    assert token_repetition_ratio(["the the cat", "a b a b"]) == pytest.approx(100 / 7)


def test_no_tokens():
    assert token_repetition_ratio([]) == 0.0
    assert token_repetition_ratio(["", []]) == 0.0
