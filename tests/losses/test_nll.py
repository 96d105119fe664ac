import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from peerseq.losses import REDUCTIONS, label_smoothed_nll
from tests.losses.helpers import garbage_under_mask, log_prob_pairs

fast = settings(max_examples=20, deadline=None)


def _targets(log_probs, mask, pad=-100):
    g = torch.Generator().manual_seed(int(mask.sum()))
    t = torch.randint(0, log_probs.size(-1), mask.shape, generator=g)
    return torch.where(mask, t, torch.full_like(t, pad))


@fast
@given(log_prob_pairs())
def test_epsilon_zero_is_plain_nll(pair):
    lp, _, mask = pair
    targets = _targets(lp, mask)
    loss, nll = label_smoothed_nll(lp, targets, mask, epsilon=0.0, reduction="sum")
    ref = F.nll_loss(lp.transpose(1, 2), targets, ignore_index=-100, reduction="sum")
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, ref)
    loss, _ = label_smoothed_nll(lp, targets, mask, epsilon=0.0, reduction="mean_tokens")
    torch.testing.assert_close(loss, ref / mask.sum())


@fast
@given(log_prob_pairs(), st.sampled_from([0.05, 0.1, 0.3]))
def test_matches_torch_cross_entropy_label_smoothing(pair, eps):
    # epsilon / V over the whole vocabulary is exactly torch's label_smoothing
    logits, _, mask = pair
    targets = _targets(logits, mask)
    loss, nll = label_smoothed_nll(logits.log_softmax(-1), targets, mask, epsilon=eps)
    ref = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, label_smoothing=eps)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, F.cross_entropy(logits.transpose(1, 2), targets))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reductions_match_brute_force(reduction):
    probs = [[[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]], [[0.1, 0.1, 0.8], [0.5, 0.25, 0.25]]]
    targets = [[0, 2], [2, 1]]
    valid = [[True, True], [True, False]]
    eps, v = 0.1, 3
    losses, nlls = [], []
    for rp, rt, rm in zip(probs, targets, valid, strict=True):
        for p, t, m in zip(rp, rt, rm, strict=True):
            if m:
                nlls.append(-math.log(p[t]))
                losses.append((1 - eps) * nlls[-1] + eps / v * sum(-math.log(x) for x in p))
    denom = {"sum": 1, "mean_tokens": 3, "mean_utts": 2}[reduction]
    loss, nll = label_smoothed_nll(
        torch.tensor(probs).log(), torch.tensor(targets), torch.tensor(valid), eps, reduction
    )
    assert float(loss) == pytest.approx(sum(losses) / denom, rel=1e-6)
    assert float(nll) == pytest.approx(sum(nlls) / denom, rel=1e-6)


@pytest.mark.parametrize("garbage", [2.0, -math.inf, math.nan])
def test_masked_positions_change_nothing_and_get_no_gradient(garbage):
    torch.manual_seed(0)
    lp = torch.log_softmax(torch.randn(2, 4, 5, dtype=torch.float64), -1)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    targets = _targets(lp, mask)  # -100 under the mask: must not be gathered
    ref, _ = label_smoothed_nll(lp, targets, mask)
    lp2 = garbage_under_mask(lp, mask, garbage).requires_grad_()
    loss, _ = label_smoothed_nll(lp2, targets, mask)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert torch.isfinite(lp2.grad).all()
    assert (lp2.grad[~mask] == 0).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(reduction):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    targets = _targets(logits, mask)

    def f(x):
        return label_smoothed_nll(x.log_softmax(-1), targets, mask, 0.1, reduction)

    assert torch.autograd.gradcheck(f, (logits,))


def test_bad_epsilon_is_rejected():
    lp = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError):
        label_smoothed_nll(
            lp, torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=bool), 1.0
        )
