"""A peer: one model, what it reads from a batch, what it predicts, and its own loss.

Peers are the values of a dict keyed by role ("st", "mt", "a", "b", "teacher_a", ...). Two kinds
of model are understood, told apart by what they offer: a CTC model (forward(speech, lengths),
output over frames) and an encoder-decoder (decode_step; output over target positions under
teacher forcing). Both return a SeqOutput, so any two peers on the same positions can be linked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from peerseq.data.batching import Batch
from peerseq.losses import label_smoothed_nll
from peerseq.losses.ctc import ctc_loss_detailed, note_infeasible
from peerseq.models.output import SeqOutput
from peerseq.tokens import BOS, EOS, PAD


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_seq2seq(model: nn.Module) -> bool:
    return hasattr(unwrap(model), "decode_step")


def with_eos(tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hypotheses [B, U] (no EOS, as decoded and cached) -> decoder targets [B, U + 1] ending
    with EOS, and lengths + 1. CTC students read the cached hypotheses as they are."""
    out = torch.nn.functional.pad(tokens, (0, 1), value=PAD)
    out[torch.arange(out.size(0), device=out.device), lengths] = EOS
    return out, lengths + 1


def shift_right(target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Decoder input under teacher forcing: BOS + target[:-1]. target [B, U] ends with EOS."""
    prev = torch.full_like(target, PAD)
    prev[:, 0] = BOS
    prev[:, 1:] = target[:, :-1]
    # the EOS of shorter rows must not leak in as an input token
    prev[prev == EOS] = PAD
    return prev


@dataclass
class Peer:
    """name: its role; reads: "speech" or a token field ("source", "transcript");
    predicts: the token field it is trained on ("target", "transcript");
    loss: "nll" (label-smoothed, encoder-decoders), "ctc", or "none";
    trainable: False for a frozen teacher (eval mode, no grad, never updated).
    train_on_hyps_of: a frozen teacher whose cached hypotheses (batch.tokens["hyp:<teacher>"],
      EOS appended here) replace the reference as this encoder-decoder's target when the batch
      has them (training: sequence-level KD); batches without them (dev, test) keep the
      reference.
    A parameter in two peers' models (EM-Network's shared output layer) belongs to the
    optimiser of the first peer that has it, so it is updated once per step.
    """

    name: str
    model: nn.Module
    reads: str = "speech"
    predicts: str = "target"
    loss: str = "nll"
    loss_weight: float = 1.0
    label_smoothing: float = 0.1
    trainable: bool = True
    reads_also: str | None = None
    train_on_hyps_of: str | None = None

    @property
    def upstream(self) -> str | None:
        """The peer whose output this one reads ("@seq" -> "seq"), if any."""
        return self.reads[1:] if self.reads.startswith("@") else None

    def inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.reads == "speech":
            return batch.speech, batch.speech_lengths
        return batch.tokens[self.reads], batch.lengths[self.reads]

    def forward(self, batch: Batch, outputs: dict[str, SeqOutput] | None = None) -> SeqOutput:
        """-> SeqOutput [B, T, V]: frames for CTC, target positions for an encoder-decoder.

        outputs: the peers' outputs so far in this step (needed when reads is "@other")."""
        if self.upstream is not None:
            tokens, lengths = batch.tokens[self.reads_also], batch.lengths[self.reads_also]
            return self.model(outputs[self.upstream], tokens, lengths)
        src, src_lengths = self.inputs(batch)
        if is_seq2seq(self.model):
            target, lengths = self.targets(batch)
            return self.model(src, src_lengths, shift_right(target, lengths), lengths)
        return self.model(src, src_lengths)

    def targets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """What this peer learns to write: [B, U] tokens and [B] lengths (see train_on_hyps_of)."""
        key = f"hyp:{self.train_on_hyps_of}"
        if self.train_on_hyps_of and key in batch.tokens:
            return with_eos(batch.tokens[key], batch.lengths[key])
        return batch.tokens[self.predicts], batch.lengths[self.predicts]

    def supervised_loss(self, out: SeqOutput, batch: Batch) -> torch.Tensor | None:
        """The peer's own loss on its targets (the reference, or a teacher's hypotheses), per-token
        mean (see peerseq.losses)."""
        target, lengths = self.targets(batch)
        if self.loss == "nll":
            return label_smoothed_nll(out.log_probs, target, out.mask, self.label_smoothing)[0]
        if self.loss == "ctc":
            result = ctc_loss_detailed(out.log_probs, out.lengths, target, lengths)
            # the rows left out, named by batch.ids with the input frames they had
            frames = batch.speech_lengths if batch.speech is not None else out.lengths
            note_infeasible(result, batch.ids, out.lengths, target, lengths, frames)
            return result.loss
        return None
