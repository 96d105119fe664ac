"""Divergences between two peers' per-position distributions on the same positions.

All take log-probabilities [B, T, V] (SeqOutput.log_probs) and a mask [B, T], and return a scalar.
Gradients flow into both arguments: which side learns is the caller's choice (detach the other),
because the methods differ (paper 000 alternates freezing, paper 002 updates both at once).
"""

from __future__ import annotations

import torch

from peerseq.losses.reduction import Reduction, mask_inputs, reduce_positions


def _finite(log_p: torch.Tensor) -> torch.Tensor:
    # A class with probability exactly 0 (log p = -inf, e.g. a vocabulary mask) would give
    # 0 * (-inf) = NaN in p * (log p - log q); the most negative finite float gives 0 instead.
    return log_p.clamp(min=torch.finfo(log_p.dtype).min)


def kl_divergence(
    p_log: torch.Tensor,
    q_log: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """KL(p || q) = sum_v p_v (log p_v - log q_v) per position, reduced over valid positions.

    p_log, q_log [B, T, V] log-probabilities (normalised when temperature == 1); mask [B, T] bool.

    temperature tau: both sides are softened as log_softmax(log_x / tau) and the result is
    multiplied by tau**2 (Hinton et al. 2015, "Distilling the knowledge in a neural network"): the
    gradient of the softened KL w.r.t. the logits shrinks as 1 / tau**2, so the factor keeps the
    link's weight comparable across temperatures. tau = 1 is the plain KL.

    Reduction over positions where mask is True: "mean_tokens" (default) = sum / valid positions
    (per-token KL, to add to a per-token NLL or CTC); "mean_utts" = sum / non-empty rows; "sum".
    Positions where mask is False contribute nothing and receive zero gradient.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    p_log, q_log = mask_inputs(p_log, mask), mask_inputs(q_log, mask)
    if temperature != 1.0:
        p_log = torch.log_softmax(p_log / temperature, dim=-1)
        q_log = torch.log_softmax(q_log / temperature, dim=-1)
    p_log, q_log = _finite(p_log), _finite(q_log)
    per_pos = (p_log.exp() * (p_log - q_log)).sum(dim=-1)  # [B, T, V] -> [B, T]
    return reduce_positions(per_pos, mask, reduction) * temperature**2


def kl_forward(
    student_log: torch.Tensor,
    teacher_log: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """Forward KL, KL(teacher || student): the usual distillation loss (mass-covering).

    Paper 002's encoder-decoder link KL(em || seq) is kl_forward(student_log=seq, teacher_log=em).
    """
    return kl_divergence(teacher_log, student_log, mask, temperature, reduction)


def kl_reverse(
    student_log: torch.Tensor,
    teacher_log: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """Reverse KL, KL(student || teacher) (mode-seeking)."""
    return kl_divergence(student_log, teacher_log, mask, temperature, reduction)


def kl_symmetric(
    a_log: torch.Tensor,
    b_log: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """KL(a || b) + KL(b || a): the SUM, not the average, as in paper 000 Eq. 8 (KL_1 + KL_2)."""
    return kl_divergence(a_log, b_log, mask, temperature, reduction) + kl_divergence(
        b_log, a_log, mask, temperature, reduction
    )


def squared_l2_posteriors(
    p_log: torch.Tensor,
    q_log: torch.Tensor,
    mask: torch.Tensor,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """sum_v (p_v - q_v)**2 per position on probabilities, reduced over valid positions.

    Paper 002 Eq. 4, L_kd-ctc = ||z_em - z_org||_2^2 between the CTC frame posteriors (softmax
    outputs). The paper states no normalisation over frames; we take the squared norm over classes
    per frame (the literal ||.||_2^2) and, by default, the mean over valid frames ("mean_tokens"),
    so alpha = 2 weighs it like a per-frame quantity against a per-token CTC. "sum" gives the
    literal norm over the whole posteriorgram; "mean_utts" the per-utterance sum. Note
    F.mse_loss would also average over classes, i.e. be V times smaller.
    """
    p_log, q_log = mask_inputs(p_log, mask), mask_inputs(q_log, mask)
    per_pos = (p_log.exp() - q_log.exp()).pow(2).sum(dim=-1)  # [B, T, V] -> [B, T]
    return reduce_positions(per_pos, mask, reduction)
