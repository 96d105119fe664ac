"""The Transformer's position-wise feed-forward block, and its fused CPU training path.

FeedForward is Linear(D, ffn) -> activation -> dropout -> Linear(ffn, D), an nn.Sequential with
nn.Sequential's parameter names. Its [B, T, ffn] activation is the largest tensor of a layer,
and on a CPU each elementwise pass over it costs about as much as reading it from memory: in the
small ST Transformer's training step, ReLU, the dropout mask's conversion and scaling, the masked
product and the two backward products were five passes of 6.5 MB per layer (bench/train_step.py).
In CPU training with ReLU the block therefore runs as one autograd function: ReLU and the
dropout mask are applied in place to the first product's output, the dropout's 1 / (1 - p) is
folded into the second product, and the backward reads the saved activation once (its zeros are
exactly where ReLU or dropout stopped the gradient). Same mask draws as `Dropout`, same values up
to rounding. Eval mode, other activations, other devices and autocast take the plain path.
"""

from __future__ import annotations

import torch
from torch import nn

from peerseq.models.dropout import Dropout, drop_mask, kept_scale


class _ReLUDropoutFFN(torch.autograd.Function):
    """x [N, D] -> (relu(x W1^T + b1) * mask / (1 - p)) W2^T + b2 -> [N, D]."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, dropped, scale):
        a = torch.addmm(b1, x, w1.t()).clamp_min_(0).masked_fill_(dropped, 0.0)  # [N, F]
        out = torch.addmm(b2, a, w2.t(), alpha=scale)
        ctx.save_for_backward(x, w1, w2, a)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w1, w2, a = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad[:5]
        scaled = grad * ctx.scale  # [N, D]: the folded 1 / (1 - p), on the narrow side
        g_w2 = scaled.t().mm(a) if need_w2 else None
        g_b2 = grad.sum(0) if need_b2 else None
        # zero where ReLU clipped or dropout dropped: both left a zero in `a`
        g_h = torch.ops.aten.threshold_backward(scaled.mm(w2), a, 0.0)
        g_x = g_h.mm(w1) if need_x else None
        g_w1 = g_h.t().mm(x) if need_w1 else None
        g_b1 = g_h.sum(0) if need_b1 else None
        return g_x, g_w1, g_b1, g_w2, g_b2, None, None


class FeedForward(nn.Sequential):
    """[B, T, D] -> Linear(D, ffn) -> activation -> dropout -> Linear(ffn, D) -> [B, T, D]."""

    def __init__(self, d_model: int, ffn: int, dropout: float = 0.1, activation: type = nn.ReLU):
        super().__init__(
            nn.Linear(d_model, ffn), activation(), Dropout(dropout), nn.Linear(ffn, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc1, act, drop, fc2 = self
        fused = (
            self.training
            and 0.0 < drop.p < 1.0
            and type(act) is nn.ReLU
            and x.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu")
        )
        if not fused:
            return super().forward(x)
        flat = x.reshape(-1, x.size(-1))
        dropped = drop_mask((flat.size(0), fc1.out_features), drop.p)
        out = _ReLUDropoutFFN.apply(
            flat, fc1.weight, fc1.bias, fc2.weight, fc2.bias, dropped, kept_scale(drop.p)
        )
        return out.view(*x.shape[:-1], out.size(-1))
