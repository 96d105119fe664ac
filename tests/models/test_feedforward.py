"""peerseq.models.feedforward: the fused CPU training path computes what the plain block
computes (same dropout draws), forward and backward; eval mode is the plain block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peerseq.models.feedforward import FeedForward


def _run(ffn, x, fused: bool, seed: int):
    torch.manual_seed(seed)
    ffn.zero_grad()
    xi = x.clone().requires_grad_(True)
    out = ffn(xi) if fused else nn.Sequential.forward(ffn, xi)
    (out * torch.linspace(-1, 1, out.size(-1))).sum().backward()
    grads = [p.grad.clone() for p in ffn.parameters()]
    return out.detach(), xi.grad, grads


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_fused_training_path_is_the_plain_block(p):
    torch.manual_seed(0)
    ffn = FeedForward(16, 64, dropout=p).train()
    x = torch.randn(3, 7, 16)
    out, gx, grads = _run(ffn, x, True, seed=5)
    ref_out, ref_gx, ref_grads = _run(ffn, x, False, seed=5)
    assert float((out - ref_out).abs().max()) <= 1e-5
    assert float((gx - ref_gx).abs().max()) <= 1e-5
    for g, r in zip(grads, ref_grads, strict=True):
        assert float((g - r).abs().max()) <= 1e-5
    assert (out == 0).sum() < out.numel()  # not everything dropped: a real comparison
    other, _, _ = _run(ffn, x, True, seed=6)
    assert not torch.equal(other, out)  # the mask follows the generator


def test_eval_mode_and_other_activations_take_the_plain_path():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    ffn = FeedForward(8, 32, dropout=0.1).eval()
    assert torch.equal(ffn(x), nn.Sequential.forward(ffn, x))
    silu = FeedForward(8, 32, dropout=0.1, activation=nn.SiLU).train()
    torch.manual_seed(1)
    a = silu(x)
    torch.manual_seed(1)
    assert torch.equal(a, nn.Sequential.forward(silu, x))
