"""The one place a per-position loss [B, T] becomes a scalar, so every loss reduces alike.

Why it matters: a link weight (beta in paper 000 Eq. 8, alpha in paper 002 Eq. 1, a and b in paper
003 Eq. 8) only means what the paper means if the link and the supervised loss it is added to are
reduced the same way. A per-token mean KL added to a per-utterance sum NLL is silently weighted by
1 / (tokens per utterance).
"""

from __future__ import annotations

from typing import Literal

import torch

Reduction = Literal["mean_tokens", "mean_utts", "sum"]
REDUCTIONS: tuple[str, ...] = ("mean_tokens", "mean_utts", "sum")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def reduce_positions(
    per_pos: torch.Tensor, mask: torch.Tensor, reduction: Reduction
) -> torch.Tensor:
    """per_pos [B, T] float, mask [B, T] bool -> scalar.

    - "sum":         sum over valid positions.
    - "mean_tokens": that sum / number of valid positions.
    - "mean_utts":   that sum / number of rows with at least one valid position (a per-utterance
                     sum, averaged over utterances).

    Masked positions are selected away with `where` (not multiplied by 0), so a NaN or inf under
    the mask cannot leak into the value. Denominators are clamped to 1: an all-masked batch gives
    0, still attached to the graph.
    """
    check_reduction(reduction)
    total = torch.where(mask, per_pos, torch.zeros_like(per_pos)).sum()
    if reduction == "sum":
        return total
    if reduction == "mean_tokens":
        return total / mask.sum().clamp(min=1)
    return total / mask.any(dim=-1).sum().clamp(min=1)


def mask_inputs(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x [B, T, V], mask [B, T] -> x with masked positions set to 0 (a finite value).

    Done before any arithmetic so that padding holding -inf or NaN cannot produce NaN gradients
    through the unselected branch of a later `where` (0 * inf = NaN in backward).
    """
    return x.masked_fill(~mask[..., None], 0.0)  # as where(mask, x, 0), without a zeros tensor
