"""peerseq.models.dropout and the attention that uses it in training: the drop rate, the
expectation, determinism under a seed, and the same attention as torch's fused kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from peerseq.models.dropout import Dropout, dropout, keep_mask
from peerseq.models.encoders import attention_with_dropout, key_padding_mask


def test_keep_rate_and_expectation():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    keep = keep_mask(x.shape, 0.1)
    assert keep.shape == x.shape and keep.dtype == torch.bool
    # 1e6 Bernoulli draws: the standard error of the rate is 3e-4
    assert abs(float(keep.float().mean()) - (1 - 6554 / 65536)) < 1.5e-3
    y = dropout(x, 0.1)
    assert abs(float(y.mean()) - 1.0) < 2e-3  # kept values scaled: the expectation is kept
    values = torch.unique(y).tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1 / (1 - 6554 / 65536))]
    # every one of the four 16-bit lanes of a draw is used alike
    rates = keep.view(-1, 4).float().mean(0)
    assert float(rates.max() - rates.min()) < 6e-3


def test_a_seed_fixes_the_mask_and_the_gradient_is_the_mask():
    x = torch.randn(3, 50, 7, requires_grad=True)
    torch.manual_seed(5)
    a = dropout(x, 0.3)
    torch.manual_seed(5)
    b = dropout(x, 0.3)
    assert torch.equal(a, b)
    a.sum().backward()
    scale = 1 / (1 - round(0.3 * 65536) / 65536)
    assert torch.allclose(x.grad, (a != 0).float() * scale)


def test_eval_and_p0_are_the_identity():
    x = torch.randn(4, 9)
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(F.dropout(x, 1.0, True), dropout(x, 1.0))  # p = 1: torch's (all zero)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_the_fused_kernel_without_dropout(causal):
    """With p = 0 the training path computes what scaled_dot_product_attention computes."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 11, 8) for _ in range(3))
    mask = None if causal else key_padding_mask(torch.tensor([11, 6, 1]), 11)
    ours = attention_with_dropout(q, k, v, mask, causal, 0.0)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    assert float((ours - ref).abs().max()) <= 1e-5


def test_attention_dropout_drops_probabilities():
    """With dropout the rows of the attention weights no longer sum to one, but do on average."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 64, 8), torch.randn(2, 2, 64, 8)
    v = torch.eye(64).expand(2, 2, 64, 64)  # the output is the (dropped) attention weights
    w = attention_with_dropout(q, k, v, None, False, 0.2)
    sums = w.sum(-1)
    assert float((sums - 1).abs().max()) > 0.05
    assert abs(float(sums.mean()) - 1.0) < 0.05


def test_a_mask_that_pads_nothing_is_the_same_as_none():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 7, 8) for _ in range(3))
    full = key_padding_mask(torch.tensor([7, 7]), 7)
    assert torch.equal(attention_with_dropout(q, k, v, full, False, 0.0),
                       attention_with_dropout(q, k, v, None, False, 0.0))  # fmt: skip
