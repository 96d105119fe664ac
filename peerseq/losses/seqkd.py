"""Sequence-level KD (Kim & Rush 2016; paper 003 Eq. 7): supervised loss on a peer's hypotheses.

Nothing here decodes: the teacher's k-best hypotheses come in as token id lists (from
peerseq.decode), and the student's log-probabilities come in as tensors. For several teachers
(paper 003 Eq. 9 sums over teachers) call once per teacher and add the results.
"""

from __future__ import annotations

import torch

from peerseq.losses.ctc import ctc_per_row, reduce_rows, warn_infeasible
from peerseq.losses.nll import label_smoothed_nll
from peerseq.losses.reduction import Reduction

Hyps = list[list[list[int]]]  # [B] utterances -> k-best (k may differ per utterance) -> token ids


def pad_hyps(
    hyps: Hyps, pad: int = 0, eos: int | None = None, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten and pad k-best lists -> (targets [N, U], lengths [N], row [N]).

    N = total number of hypotheses; row[n] is the utterance hypothesis n belongs to, so a caller
    can repeat per-utterance tensors with index_select(0, row) (e.g. the encoder output, to
    teacher-force a decoder on each hypothesis). eos, if given, is appended to every hypothesis
    (decoders are trained to emit it; CTC targets must not contain it).
    """
    flat = [list(h) + ([eos] if eos is not None else []) for k_best in hyps for h in k_best]
    row = [b for b, k_best in enumerate(hyps) for _ in k_best]
    u = max((len(h) for h in flat), default=0)
    targets = torch.full((len(flat), u), pad, dtype=torch.long)
    for n, h in enumerate(flat):
        targets[n, : len(h)] = torch.tensor(h, dtype=torch.long)
    lengths = torch.tensor([len(h) for h in flat], dtype=torch.long)
    row_t = torch.tensor(row, dtype=torch.long)
    return targets.to(device), lengths.to(device), row_t.to(device)


def seqkd_ctc(
    log_probs: torch.Tensor,
    input_lengths: torch.Tensor,
    hyps: Hyps,
    weights: list[list[float]] | None = None,
    blank: int = 0,
    reduction: Reduction = "mean_tokens",
) -> torch.Tensor:
    """CTC of the student on the teacher's k-best hypotheses, averaged over k.

    log_probs [B, T, V] student log-softmax; input_lengths [B]; hyps: B k-best lists of token id
    lists (no blanks); weights: same nesting as hyps, one weight per hypothesis (e.g. normalised
    teacher scores); default 1/k_b for each of utterance b's k_b hypotheses.

    Each utterance contributes sum_k w_bk * CTC(hyp_bk). Reduction over all (b, k) pairs:
    "sum" = sum_bk w_bk * loss_bk; "mean_utts" = that / sum_bk w_bk (= / B with default weights);
    "mean_tokens" (default) = that / sum_bk w_bk * len(hyp_bk), so with k = 1 it is exactly
    ctc_loss(..., reduction="mean_tokens") on the hypotheses. Hypotheses too long for the input
    are left out (weight 0, no renormalisation) with one InfeasibleCTCWarning, as in ctc_loss.

    Cost: the student's log_probs are copied once per hypothesis ([N, T, V], N = sum_b k_b).
    """
    if len(hyps) != log_probs.size(0):
        raise ValueError(f"{len(hyps)} hypothesis lists for a batch of {log_probs.size(0)}")
    device = log_probs.device
    targets, target_lengths, row = pad_hyps(hyps, pad=blank, device=device)
    if weights is None:
        w = torch.tensor([1.0 / len(k_best) for k_best in hyps for _ in k_best], device=device)
    else:
        if [len(k) for k in weights] != [len(k) for k in hyps]:
            raise ValueError("weights must have the same nesting as hyps")
        w = torch.tensor([x for k_w in weights for x in k_w], device=device)
    losses, feasible = ctc_per_row(
        log_probs.index_select(0, row),  # [B, T, V] -> [N, T, V], one copy per hypothesis
        input_lengths.to(device).index_select(0, row),
        targets,
        target_lengths,
        blank,
    )
    warn_infeasible(int((~feasible).sum()), feasible.numel(), what="hypotheses")
    return reduce_rows(losses, w.to(losses.dtype) * feasible, target_lengths, reduction)


def seqkd_nll(
    log_probs: torch.Tensor,
    hyp_targets: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float = 0.0,
    reduction: Reduction = "mean_tokens",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence-level KD for encoder-decoders: label_smoothed_nll with the hypotheses as targets.

    Deliberately thin: the work is in building the inputs. Use pad_hyps(hyps, pad, eos) to get
    hyp_targets [N, U] and lengths, repeat the encoder output with row, teacher-force the decoder
    on the hypotheses, and pass its log_probs [N, U, V] and mask [N, U] here. With k > 1 every
    hypothesis token counts once ("mean_tokens"), i.e. hypotheses are weighted by their length.

    epsilon defaults to 0 (plain NLL on the pseudo-labels, as in Kim & Rush 2016 and paper 003
    Eq. 7); returns (loss, nll) as label_smoothed_nll does.
    """
    return label_smoothed_nll(log_probs, hyp_targets, mask, epsilon, reduction)
