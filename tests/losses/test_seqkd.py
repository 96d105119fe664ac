import pytest
import torch

from peerseq.losses import (
    REDUCTIONS,
    InfeasibleCTCWarning,
    ctc_loss,
    label_smoothed_nll,
    pad_hyps,
    seqkd_ctc,
    seqkd_nll,
)


def _log_probs(b, t, v=5):
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, t, v, generator=g, dtype=torch.float64).log_softmax(-1)


def test_pad_hyps_flattens_and_remembers_rows():
    targets, lengths, row = pad_hyps([[[1, 2], [3]], [[4, 4, 4]]], pad=0, eos=9)
    assert targets.tolist() == [[1, 2, 9, 0], [3, 9, 0, 0], [4, 4, 4, 9]]
    assert lengths.tolist() == [3, 2, 4]
    assert row.tolist() == [0, 0, 1]


def _ctc_one(lp, input_lengths, b, hyp):
    targets, lengths, _ = pad_hyps([[hyp]])
    return ctc_loss(lp[b : b + 1], input_lengths[b : b + 1], targets, lengths, reduction="sum")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_one_best_is_ctc_on_the_hypotheses(reduction):
    hyps = [[[1, 2, 3]], [[4]], [[2, 2]]]
    lp, input_lengths = _log_probs(3, 6), torch.tensor([6, 4, 5])
    targets, lengths, _ = pad_hyps(hyps)
    expected = ctc_loss(lp, input_lengths, targets, lengths, reduction=reduction)
    torch.testing.assert_close(seqkd_ctc(lp, input_lengths, hyps, reduction=reduction), expected)


@pytest.mark.parametrize("use_weights", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_k_best_is_a_weighted_average_over_hypotheses(reduction, use_weights):
    hyps = [[[1, 2, 3], [1, 3]], [[4], [4, 1], [2]]]
    weights = [[0.75, 0.25], [0.5, 0.25, 0.25]] if use_weights else None
    w = weights or [[0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]
    lp, input_lengths = _log_probs(2, 6), torch.tensor([6, 4])
    total = sum(
        w[b][k] * _ctc_one(lp, input_lengths, b, h)
        for b, k_best in enumerate(hyps)
        for k, h in enumerate(k_best)
    )
    denom = {
        "sum": 1.0,
        "mean_utts": 2.0,
        "mean_tokens": sum(w[b][k] * len(h) for b, kb in enumerate(hyps) for k, h in enumerate(kb)),
    }[reduction]
    out = seqkd_ctc(lp, input_lengths, hyps, weights, reduction=reduction)
    torch.testing.assert_close(out, total / denom)


def test_infeasible_hypotheses_are_warned_about_and_left_out():
    lp, input_lengths = _log_probs(1, 3), torch.tensor([3])
    with pytest.warns(InfeasibleCTCWarning, match="1 of 2 hypotheses"):
        out = seqkd_ctc(lp, input_lengths, [[[1, 2], [1, 1, 1]]], reduction="sum")
    torch.testing.assert_close(out, 0.5 * _ctc_one(lp, input_lengths, 0, [1, 2]))


def test_weights_must_match_hyps():
    with pytest.raises(ValueError):
        seqkd_ctc(_log_probs(1, 3), torch.tensor([3]), [[[1], [2]]], weights=[[1.0]])
    with pytest.raises(ValueError):
        seqkd_ctc(_log_probs(2, 3), torch.tensor([3, 3]), [[[1]]])


def test_seqkd_nll_is_label_smoothed_nll_on_hypotheses():
    targets, lengths, _ = pad_hyps([[[1, 2, 3]], [[4]]], eos=0)
    lp = _log_probs(2, targets.size(1)).requires_grad_()
    mask = torch.arange(targets.size(1))[None, :] < lengths[:, None]
    out = seqkd_nll(lp, targets, mask)
    torch.testing.assert_close(out, label_smoothed_nll(lp, targets, mask, epsilon=0.0))
    out[0].backward()
    assert (lp.grad[~mask] == 0).all()
