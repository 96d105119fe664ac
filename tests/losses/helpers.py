"""Small random inputs shared by the loss tests (hypothesis draws sizes and a seed)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st


@st.composite
def log_prob_pairs(draw, max_b: int = 3, max_t: int = 4, max_v: int = 5):
    """-> (p_log [B, T, V], q_log [B, T, V], mask [B, T]) float64; every row has >= 1 valid."""
    b = draw(st.integers(1, max_b))
    t = draw(st.integers(1, max_t))
    v = draw(st.integers(2, max_v))
    lengths = torch.tensor(draw(st.lists(st.integers(1, t), min_size=b, max_size=b)))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    # logits in [-2, 2]: every class keeps a probability >= e^-4 / V, so differences are visible
    p = torch.log_softmax(4 * torch.rand(b, t, v, generator=g, dtype=torch.float64) - 2, -1)
    q = torch.log_softmax(4 * torch.rand(b, t, v, generator=g, dtype=torch.float64) - 2, -1)
    return p, q, mask_of(lengths, t)


def mask_of(lengths: torch.Tensor, t: int) -> torch.Tensor:
    return torch.arange(t)[None, :] < lengths[:, None]


def garbage_under_mask(x: torch.Tensor, mask: torch.Tensor, value: float) -> torch.Tensor:
    """x with every masked-out position overwritten by `value` (a number, inf or NaN)."""
    return torch.where(mask[..., None], x, torch.full_like(x, value))
