"""Losses as pure functions of tensors: CTC, label-smoothed NLL, divergences, sequence-level KD.

None of them calls a model. Every one documents its reduction; see reduction.py for why the
reductions of a supervised loss and the links added to it must match.
"""

from peerseq.losses.ctc import (
    CTCLoss,
    InfeasibleCTCWarning,
    ctc_loss,
    ctc_loss_detailed,
    ctc_min_frames,
    infeasible_ctc_rows,
)
from peerseq.losses.divergence import (
    kl_divergence,
    kl_forward,
    kl_reverse,
    kl_symmetric,
    squared_l2_posteriors,
)
from peerseq.losses.nll import label_smoothed_nll
from peerseq.losses.reduction import REDUCTIONS, Reduction, reduce_positions
from peerseq.losses.seqkd import pad_hyps, seqkd_ctc, seqkd_nll

__all__ = [
    "CTCLoss",
    "InfeasibleCTCWarning",
    "REDUCTIONS",
    "Reduction",
    "ctc_loss",
    "ctc_loss_detailed",
    "ctc_min_frames",
    "infeasible_ctc_rows",
    "kl_divergence",
    "kl_forward",
    "kl_reverse",
    "kl_symmetric",
    "label_smoothed_nll",
    "pad_hyps",
    "reduce_positions",
    "seqkd_ctc",
    "seqkd_nll",
    "squared_l2_posteriors",
]
