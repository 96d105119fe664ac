import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from peerseq.losses import (
    REDUCTIONS,
    InfeasibleCTCWarning,
    ctc_loss,
    ctc_loss_detailed,
    ctc_min_frames,
    infeasible_ctc_rows,
)

fast = settings(max_examples=20, deadline=None)
V = 4  # blank 0 and labels 1..3: small, so repeated labels are frequent


def _pad(seqs, pad=-1):
    u = max((len(s) for s in seqs), default=0)
    targets = torch.full((len(seqs), u), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        targets[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return targets, torch.tensor([len(s) for s in seqs], dtype=torch.long)


def _log_probs(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, V, generator=g, dtype=torch.float64).log_softmax(-1)


def _torch_rows(lp, input_lengths, targets, target_lengths):
    targets = targets.clamp(min=0)
    return F.ctc_loss(lp.transpose(0, 1), targets, input_lengths, target_lengths, reduction="none")


labels = st.lists(st.lists(st.integers(1, V - 1), max_size=5), min_size=1, max_size=4)


@fast
@given(labels)
def test_min_frames_counts_length_plus_repeats(seqs):
    targets, lengths = _pad(seqs, pad=1)  # a pad equal to the last label must not count
    expected = [len(s) + sum(a == b for a, b in zip(s, s[1:], strict=False)) for s in seqs]
    assert ctc_min_frames(targets, lengths).tolist() == expected


@fast
@given(labels, st.integers(-2, 1), st.integers(0, 2**31 - 1))
def test_infeasible_is_exactly_where_torch_gives_inf(seqs, slack, seed):
    targets, target_lengths = _pad(seqs)
    need = ctc_min_frames(targets, target_lengths)
    input_lengths = (need + slack).clamp(min=0)
    t = int(input_lengths.max().clamp(min=1))
    rows = _torch_rows(_log_probs(len(seqs), t, seed), input_lengths, targets, target_lengths)
    expected = torch.isinf(rows).nonzero(as_tuple=True)[0]
    assert infeasible_ctc_rows(input_lengths, targets, target_lengths).tolist() == expected.tolist()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_equals_torch_when_all_rows_are_feasible(reduction):
    targets, target_lengths = _pad([[1, 2, 2], [3], [1, 2, 3, 1]])
    input_lengths = torch.tensor([6, 3, 8])
    lp = _log_probs(3, 8)
    rows = _torch_rows(lp, input_lengths, targets, target_lengths)
    expected = {
        "sum": rows.sum(),
        "mean_utts": rows.mean(),
        "mean_tokens": rows.sum() / target_lengths.sum(),
    }[reduction]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when nothing is infeasible
        out = ctc_loss(lp, input_lengths, targets, target_lengths, reduction=reduction)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_infeasible_rows_are_reported_and_left_out(reduction):
    # row 1 needs 3 frames ("a _ a") but has 2; row 2 has 1 frame for 2 labels
    targets, target_lengths = _pad([[1, 2], [3, 3], [1, 2], [2]])
    input_lengths = torch.tensor([5, 2, 1, 4])
    lp = _log_probs(4, 5).requires_grad_()
    with pytest.warns(InfeasibleCTCWarning, match="2 of 4 rows"):
        out = ctc_loss(lp, input_lengths, targets, target_lengths, reduction=reduction)

    keep = torch.tensor([0, 3])
    ref = ctc_loss(lp[keep], input_lengths[keep], targets[keep], target_lengths[keep], 0, reduction)
    torch.testing.assert_close(out, ref)
    assert torch.isfinite(out)
    out.backward()
    assert (lp.grad[[1, 2]] == 0).all()
    assert (lp.grad[[0, 3]] != 0).any()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the detailed form hands over the rows instead of warning
        detailed = ctc_loss_detailed(lp, input_lengths, targets, target_lengths, 0, reduction)
    torch.testing.assert_close(detailed.loss, out)
    assert detailed.infeasible.tolist() == [1, 2]
    assert infeasible_ctc_rows(input_lengths, targets, target_lengths).tolist() == [1, 2]


def test_one_warning_per_call():
    targets, target_lengths = _pad([[1, 1], [2, 2], [3, 3]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctc_loss(_log_probs(3, 2), torch.tensor([2, 2, 2]), targets, target_lengths)
    assert len(caught) == 1 and "3 of 3 rows" in str(caught[0].message)


def test_all_rows_infeasible_gives_zero_that_backpropagates():
    targets, target_lengths = _pad([[1, 1, 1]])
    lp = _log_probs(1, 2).requires_grad_()
    with pytest.warns(InfeasibleCTCWarning):
        out = ctc_loss(lp, torch.tensor([2]), targets, target_lengths)
    assert float(out.detach()) == 0.0
    out.backward()
    assert (lp.grad == 0).all()


def test_padding_value_and_padded_frames_do_not_matter():
    targets, target_lengths = _pad([[1, 2, 3], [2]], pad=-100)
    input_lengths = torch.tensor([5, 3])
    lp = _log_probs(2, 6)
    ref = ctc_loss(lp, input_lengths, targets.clamp(min=0), target_lengths)
    lp2 = lp.clone()
    lp2[0, 5:] = float("nan")
    lp2[1, 3:] = float("nan")
    torch.testing.assert_close(ctc_loss(lp2, input_lengths, targets, target_lengths), ref)


def test_small_cases_match_their_closed_form():
    """-log P(y | x) written out by hand (blank 0): one frame and one label has the single path
    "a"; two frames and one label the paths "a a", "_ a", "a _"; "a a" in three frames only
    "a _ a". The per-token mean divides the summed rows by 1 + 1 + 2 target tokens."""
    p = torch.tensor(
        [
            [[0.2, 0.7, 0.1], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],  # only frame 0 is valid
            [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.0, 0.0, 0.0]],  # frames 0-1 are valid
            [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]],
        ],
        dtype=torch.float64,
    )
    p[0, 1:] = p[1, 2] = 1 / 3  # padding frames: any distribution
    targets, target_lengths = _pad([[1], [2], [1, 1]], pad=0)
    input_lengths = torch.tensor([1, 2, 3])
    rows = [
        -math.log(0.7),
        -math.log(0.2 * 0.3 + 0.5 * 0.3 + 0.2 * 0.1),
        -math.log(0.8 * 0.6 * 0.7),
    ]
    lp = p.log()
    got = ctc_loss(lp, input_lengths, targets, target_lengths, reduction="sum")
    assert float(got) == pytest.approx(sum(rows), rel=1e-9)
    got = ctc_loss(lp, input_lengths, targets, target_lengths)
    assert float(got) == pytest.approx(sum(rows) / 4, rel=1e-9)
    got = ctc_loss(lp, input_lengths, targets, target_lengths, reduction="mean_utts")
    assert float(got) == pytest.approx(sum(rows) / 3, rel=1e-9)


def test_a_tally_counts_infeasible_rows_instead_of_warning():
    from peerseq.losses.ctc import tally_infeasible

    targets, target_lengths = _pad([[1, 2], [3, 3], [1, 2], [2]])
    input_lengths = torch.tensor([5, 2, 1, 4])
    lp = _log_probs(4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # counted, not warned
        with tally_infeasible() as tally:
            for _ in range(3):
                ctc_loss(lp, input_lengths, targets, target_lengths)
    assert tally.take() == (6, 12, 3) and tally.take() == (0, 0, 0)
    with pytest.warns(InfeasibleCTCWarning):  # outside the tally: warned again
        ctc_loss(lp, input_lengths, targets, target_lengths)
