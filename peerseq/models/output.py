"""The one output every token-predicting model returns, so any two peers can be linked."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SeqOutput:
    """Per-position log-probabilities with their valid extent.

    log_probs: [B, T, V] log-softmax over the vocabulary (float32 even under autocast).
    lengths:   [B] number of valid positions per row (frames for CTC, target positions for
               encoder-decoders under teacher forcing).
    mask:      [B, T] bool, True on valid positions; equals arange(T) < lengths[:, None].
    hidden:    optional [B, T, D] representation the output layer read (the EM-Network's
               auxiliary network and CTC heads use it); None when a model has none to give.
    """

    log_probs: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor
    hidden: torch.Tensor | None = None

    @staticmethod
    def from_logits(
        logits: torch.Tensor, lengths: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> SeqOutput:
        """logits [B, T, V] -> SeqOutput with a float32 log-softmax and a mask from lengths."""
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        return SeqOutput(log_probs, lengths, lengths_to_mask(lengths, logits.size(1)), hidden)


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """lengths [B] -> bool mask [B, T], True where position < length."""
    t = int(lengths.max()) if max_len is None else max_len
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]
