"""Label-smoothed NLL under teacher forcing (paper 000 Eq. 6-7, paper 002 Eq. 5)."""

from __future__ import annotations

import torch

from peerseq.losses.reduction import Reduction, reduce_positions


def label_smoothed_nll(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float = 0.1,
    reduction: Reduction = "mean_tokens",
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (loss, nll), both reduced the same way; nll is the unsmoothed part, for logging.

    log_probs [B, U, V] log-softmax; targets [B, U] token ids (any value where mask is False);
    mask [B, U] bool, True on target positions to score.

    Per position, fairseq's original form (epsilon / V spread over the whole vocabulary, the
    target included):
        loss = (1 - epsilon) * (-log p[y]) + (epsilon / V) * sum_v (-log p[v])
    i.e. cross-entropy against (1 - epsilon) * onehot(y) + epsilon / V, the same as torch's
    cross_entropy(label_smoothing=epsilon). (Newer fairseq spreads epsilon over the V - 1
    non-target classes instead; the difference is a rescaling of epsilon by V / (V - 1).)

    Reduction over the positions where mask is True: "mean_tokens" (default) = sum / number of
    valid positions; "mean_utts" = sum / number of non-empty rows; "sum" = sum. Use the same one as
    the links added to this loss (see peerseq.losses.reduction).
    """
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
    # No masking of the [B, U, V] input: at V = 4000 it cost a fifth of an MT training step
    # (100 steps of em_network/mt.yaml in bf16: 127 -> 153-163 sentences a second, same losses);
    # every quantity below is per position, and reduce_positions selects the valid ones with
    # `where`, so padding's values, -inf included, reach neither the loss nor, as exact zeros,
    # the gradient (tests/losses: padding holding -inf or garbage changes nothing).
    safe_targets = torch.where(mask, targets, torch.zeros_like(targets))  # pads may be -100 etc.
    nll = -log_probs.gather(-1, safe_targets.unsqueeze(-1)).squeeze(-1)  # [B, U, V] -> [B, U]
    smooth = -log_probs.sum(dim=-1)  # [B, U]
    per_pos = (1.0 - epsilon) * nll + (epsilon / log_probs.size(-1)) * smooth
    return reduce_positions(per_pos, mask, reduction), reduce_positions(nll, mask, reduction)
