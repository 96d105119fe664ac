"""CTC model: front-end -> encoder -> linear output layer over a vocabulary with blank=0."""

from __future__ import annotations

import torch
from torch import nn

from peerseq.models.output import SeqOutput


class CTCModel(nn.Module):
    """speech [B, T, F], speech_lengths [B] -> SeqOutput over frames [B, T', V].

    frontend: (speech, lengths) -> (x [B, T', D], lengths'), e.g. Conv2dSubsampler.
    encoder:  (x, lengths') -> (h [B, T', D_enc], lengths'), e.g. ConformerEncoder.
    output_layer: h [B, T', D_enc] -> logits [B, T', V]; vocabulary index 0 is the CTC blank.
    The encoder states are returned in SeqOutput.hidden (the EM-Network's auxiliary net reads them).
    """

    def __init__(self, frontend: nn.Module, encoder: nn.Module, output_layer: nn.Module):
        super().__init__()
        self.frontend = frontend
        self.encoder = encoder
        self.output_layer = output_layer

    def encode(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> encoder states [B, T', D_enc], lengths [B]."""
        x, lengths = self.frontend(speech, speech_lengths)
        return self.encoder(x, lengths)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> SeqOutput:
        hidden, lengths = self.encode(speech, speech_lengths)
        return SeqOutput.from_logits(self.output_layer(hidden), lengths, hidden)
