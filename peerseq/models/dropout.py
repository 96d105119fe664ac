"""Dropout whose mask is cheap to draw on a CPU.

torch's CPU dropout draws one Bernoulli sample per element (`bernoulli_`), about 10 ns each: in a
training step of the small ST Transformer that was a fifth of the CPU time, more than all its
attention products. Here one 64-bit draw from torch's generator (`random_` over the full int64
range) gives four 16-bit lanes, and an element is kept when its lane is at or above a threshold:
P(drop) = round(p * 65536) / 65536 (p = 0.1 -> 0.1000061), and kept values are scaled by
1 / (1 - that), so the expectation is exact. The draws come from torch's default generator, so a
seed fixes them and a checkpoint's RNG state resumes them bit-exactly. On other devices torch's
own dropout is used (its GPU kernels draw masks in parallel).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LANES = 65536  # 16-bit lanes: the resolution of the drop probability


def _lanes(shape: torch.Size | tuple[int, ...], device=None) -> torch.Tensor:
    """int16 lanes uniform over -32768 .. 32767, one per element of shape (flat)."""
    n = 1
    for s in shape:
        n *= s
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), None)  # every bit uniform (the default range leaves the top bit 0)
    return words.view(torch.int16)[:n]


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device=None) -> torch.Tensor:
    """bool tensor of `shape`, True with probability 1 - round(p * 65536) / 65536."""
    return (_lanes(shape, device) >= round(p * _LANES) - _LANES // 2).view(shape)


def drop_mask(shape: torch.Size | tuple[int, ...], p: float, device=None) -> torch.Tensor:
    """~keep_mask(shape, p) from the same draws, in one pass: True where an element is dropped."""
    return (_lanes(shape, device) < round(p * _LANES) - _LANES // 2).view(shape)


def kept_scale(p: float) -> float:
    """1 / P(keep): what keep_mask's kept values are multiplied by."""
    return 1.0 / (1.0 - round(p * _LANES) / _LANES)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """F.dropout(x, p, training), with the mask drawn by keep_mask on a CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)
    scale = torch.tensor(kept_scale(p), dtype=x.dtype)
    # a float mask (scale or 0) computed without grad: autograd's backward is one product. The
    # bool -> float conversion goes through uint8, which torch vectorises (3x faster than bool's)
    mask = keep_mask(x.shape, p, x.device).view(torch.uint8).to(x.dtype).mul_(scale)
    return x * mask


class Dropout(nn.Module):
    """nn.Dropout with keep_mask's masks (same p, same behaviour in eval mode)."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
