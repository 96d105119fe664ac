"""CTC loss (paper 002 Eq. 2, paper 003 Eq. 8) that reports the rows it cannot score.

torch's ctc_loss gives +inf for a row whose input is too short for its target; zero_infinity=True
turns that into 0 with zero gradient, which keeps training alive but hides data problems (too
much subsampling, a wrong transcript). Here those rows are excluded from the mean, counted and
warned about, and `ctc_loss_detailed` hands their indices to a caller that wants to log them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from peerseq.losses.reduction import Reduction, check_reduction


class InfeasibleCTCWarning(UserWarning):
    """Some rows had fewer input frames than their target needs; they were left out of the loss."""


class CTCLoss(NamedTuple):
    loss: torch.Tensor  # scalar, reduced over feasible rows only
    infeasible: torch.Tensor  # LongTensor [N] of row indices left out (N may be 0)


def ctc_min_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """targets [B, U] padded, target_lengths [B] -> [B] fewest input frames any alignment needs.

    That is U plus one frame per pair of equal consecutive labels, since CTC must put a blank
    between them ("aa" needs "a _ a"). Padding past target_lengths is ignored whatever its value.
    """
    if targets.size(1) < 2:
        return target_lengths.clone()
    same = targets[:, 1:] == targets[:, :-1]  # [B, U-1]
    # pair (i-1, i) counts only if position i is inside the target
    pos = torch.arange(1, targets.size(1), device=targets.device)
    inside = pos[None, :] < target_lengths[:, None]
    return target_lengths + (same & inside).sum(dim=1)


def infeasible_ctc_rows(
    input_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor
) -> torch.Tensor:
    """-> LongTensor of the row indices whose input_lengths < ctc_min_frames (empty if none)."""
    short = input_lengths.to(target_lengths.device) < ctc_min_frames(targets, target_lengths)
    return short.nonzero(as_tuple=True)[0]


def ctc_per_row(
    log_probs: torch.Tensor,
    input_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (losses [B] = -log P(target | input) per row, 0 on infeasible rows; feasible [B] bool).

    log_probs [B, T, V] must be log-softmax normalised (SeqOutput.log_probs is).
    """
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be [B, T, V], got shape {tuple(log_probs.shape)}")
    input_lengths = input_lengths.long()
    target_lengths = target_lengths.long()
    feasible = input_lengths >= ctc_min_frames(targets, target_lengths)
    # torch reads only the first target_lengths labels, but a pad id such as -100 would still be
    # an odd thing to hand it; blank is always a valid index.
    pos = torch.arange(targets.size(1), device=targets.device)
    in_target = pos[None, :] < target_lengths[:, None]
    targets = torch.where(in_target, targets, torch.full_like(targets, blank))
    losses = F.ctc_loss(
        log_probs.transpose(0, 1),  # [B, T, V] -> [T, B, V], the layout torch expects
        targets,
        input_lengths,
        target_lengths,
        blank=blank,
        reduction="none",
        zero_infinity=True,  # infeasible rows: 0 with zero gradient instead of inf / NaN
    )
    return torch.where(feasible, losses, torch.zeros_like(losses)), feasible


def reduce_rows(
    losses: torch.Tensor, weights: torch.Tensor, tokens: torch.Tensor, reduction: Reduction
) -> torch.Tensor:
    """Weighted per-row losses [N] -> scalar; weights [N] (0 on rows left out), tokens [N].

    "sum": sum w*loss; "mean_utts": that / sum w; "mean_tokens": that / sum w*tokens.
    A zero denominator is replaced by 1, so a batch with nothing to score gives 0, still attached
    to the graph (a fractional denominator is kept: with weights 1/k it can legitimately be < 1).
    """
    check_reduction(reduction)
    weights = weights.to(losses.dtype)
    total = (weights * losses).sum()
    if reduction == "sum":
        return total
    if reduction == "mean_utts":
        denom = weights.sum()
    else:
        denom = (weights * tokens.to(losses.dtype)).sum()
    return total / torch.where(denom > 0, denom, torch.ones_like(denom))


@dataclass
class InfeasibleTally:
    """Rows left out of CTC losses while tally_infeasible() is active (counted, not warned);
    `short`: (utterance id, frames after subsampling, frames the target needs, input frames)
    of the rows named by their caller (see note_infeasible)."""

    bad: int = 0
    rows: int = 0
    calls: int = 0
    short: list[tuple[str, int, int, int]] = field(default_factory=list)

    def take(self) -> tuple[int, int, int]:
        """(bad, rows, calls) so far, and start counting again (`short` too)."""
        got = (self.bad, self.rows, self.calls)
        self.bad = self.rows = self.calls = 0
        return got


_tally: InfeasibleTally | None = None


@contextmanager
def tally_infeasible() -> Iterator[InfeasibleTally]:
    """Count infeasible CTC rows instead of warning once per loss call: a training loop says
    them once an epoch (a corpus with short utterances warned on every step)."""
    global _tally
    outer, _tally = _tally, InfeasibleTally()
    try:
        yield _tally
    finally:
        _tally = outer


def note_infeasible(
    result: CTCLoss,
    ids: list[str],
    input_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    source_lengths: torch.Tensor,
) -> None:
    """ctc_loss_detailed's infeasible rows of a batch: warned as ctc_loss warns, or, under
    tally_infeasible(), counted with their utterance ids and frame counts (source_lengths: the
    model's input frames before its front-end subsampled them)."""
    bad = result.infeasible.tolist()
    if _tally is not None and bad:
        needs = ctc_min_frames(targets, target_lengths)
        for i in bad:
            have, need = int(input_lengths[i]), int(needs[i])
            _tally.short.append((ids[i], have, need, int(source_lengths[i])))
    warn_infeasible(len(bad), len(ids))


def warn_infeasible(n_bad: int, n_rows: int, what: str = "rows") -> None:
    if n_bad and _tally is not None:
        _tally.bad, _tally.rows, _tally.calls = (
            _tally.bad + n_bad,
            _tally.rows + n_rows,
            _tally.calls + 1,
        )
    elif n_bad:
        warnings.warn(
            f"CTC: {n_bad} of {n_rows} {what} have fewer input frames than their target needs "
            "(target length + repeated consecutive labels); left out of the loss",
            InfeasibleCTCWarning,
            stacklevel=3,
        )


def ctc_loss_detailed(
    log_probs: torch.Tensor,
    input_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: Reduction = "mean_tokens",
) -> CTCLoss:
    """As `ctc_loss`, but returns CTCLoss(loss, infeasible row indices) and does not warn.

    For a caller (the objective) that logs the number of infeasible rows as a named term.
    """
    losses, feasible = ctc_per_row(log_probs, input_lengths, targets, target_lengths, blank)
    loss = reduce_rows(losses, feasible, target_lengths, reduction)
    return CTCLoss(loss, (~feasible).nonzero(as_tuple=True)[0])


def ctc_loss(
    log_probs: torch.Tensor,
    input_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """CTC loss, -log P(y | x) summed over alignments, over the rows that can be aligned.

    log_probs [B, T, V] log-softmax; input_lengths [B] valid frames; targets [B, U] padded (any
    pad value); target_lengths [B]; blank the blank index.

    Reduction, over feasible rows only (F = rows with input_lengths >= ctc_min_frames):
    - "mean_tokens" (default): sum_F loss / sum_F target_lengths, the per-token mean (fairseq and
      icefall normalise this way). NOT torch's reduction="mean", which averages loss/length per row.
    - "mean_utts": sum_F loss / |F|.
    - "sum": sum_F loss.

    Infeasible rows contribute 0 with zero gradient and are left out of the denominators; one
    InfeasibleCTCWarning per call names how many. To count them, call `infeasible_ctc_rows`
    (cheap) or use `ctc_loss_detailed`.
    """
    result = ctc_loss_detailed(log_probs, input_lengths, targets, target_lengths, blank, reduction)
    warn_infeasible(result.infeasible.numel(), log_probs.size(0))
    return result.loss
