"""Front-ends: turn model inputs (speech features or token ids) into [B, T, D] encoder inputs.

Every front-end follows one interface, forward(x, lengths) -> (y [B, T', D], lengths'), so an
encoder-decoder takes speech (ST/ASR) or text (MT) by swapping only this module.

Positions live here: each front-end scales its output by sqrt(D), adds sinusoidal positions and
applies dropout (fairseq's s2t and ESPnet do the same after subsampling). Encoders therefore never
add positions themselves, and an LSTM stack can use a subsampler built with positions=False.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from peerseq.models.dropout import Dropout
from peerseq.models.output import lengths_to_mask


def sinusoidal_positions(
    length: int, dim: int, start: int = 0, device=None, dtype=torch.float32
) -> torch.Tensor:
    """[length, dim] Vaswani et al. encoding of positions start .. start+length-1.

    Computed on the fly (a few microseconds) rather than stored, so there is no maximum length and
    nothing extra in the state dict.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dimension, got {dim}")
    pos = torch.arange(start, start + length, device=device, dtype=torch.float32)
    inv_freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    angles = pos[:, None] * inv_freq[None, :]  # [length, dim/2]
    # interleave sin (even channels) and cos (odd channels)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1).to(dtype)


class PositionalEncoding(nn.Module):
    """x [B, T, D] -> dropout(x * sqrt(D) + positions[start : start+T])."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.dim = dim
        self.scale = math.sqrt(dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        pe = sinusoidal_positions(x.size(1), self.dim, start, x.device, x.dtype)
        return self.dropout(x * self.scale + pe)


def conv_out_lengths(lengths: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Output lengths of a 1-D convolution: floor((L + 2p - k) / s) + 1."""
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


class Conv1dSubsampler(nn.Module):
    """fairseq s2t's front-end: 1-D convolutions over time, each stride 2, then positions.

    speech [B, T, F], lengths [B] -> x [B, T', D], lengths' [B], T' = ceil(T / 2^n_layers).

    With activation="glu" (fairseq's default) each convolution outputs 2x channels and a GLU halves
    them; with "relu" it outputs the channels directly. Padded frames are zeroed before every
    convolution, so a sequence gives the same valid outputs alone or padded in a batch.
    """

    def __init__(
        self,
        in_feats: int,
        d_model: int,
        mid_channels: int = 1024,
        kernel_sizes: tuple[int, ...] = (5, 5),
        activation: Literal["glu", "relu"] = "glu",
        dropout: float = 0.1,
        positions: bool = True,
    ):
        super().__init__()
        if activation not in ("glu", "relu"):
            raise ValueError(f"activation must be 'glu' or 'relu', got {activation!r}")
        widen = 2 if activation == "glu" else 1  # a GLU halves its input channels
        self.kernel_sizes = kernel_sizes
        self.convs = nn.ModuleList()
        for i, k in enumerate(kernel_sizes):
            c_in = in_feats if i == 0 else mid_channels // widen
            last = i == len(kernel_sizes) - 1
            c_out = d_model * widen if last else mid_channels
            self.convs.append(nn.Conv1d(c_in, c_out, k, stride=2, padding=k // 2))
        self.act = nn.GLU(dim=1) if activation == "glu" else nn.ReLU()
        self.pos = PositionalEncoding(d_model, dropout) if positions else Dropout(dropout)

    def forward(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = speech.transpose(1, 2)  # (B, T, F) -> (B, F, T): Conv1d wants channels first
        for conv, k in zip(self.convs, self.kernel_sizes, strict=True):
            # masked_fill, not a multiply: padding that holds NaN/inf must not leak either
            x = x.masked_fill(~lengths_to_mask(lengths, x.size(2))[:, None, :], 0.0)
            x = self.act(conv(x))
            lengths = conv_out_lengths(lengths, k, 2, k // 2)
        return self.pos(x.transpose(1, 2)), lengths  # (B, D, T') -> (B, T', D)


class Conv2dSubsampler(nn.Module):
    """ESPnet/icefall-style x4 subsampling: two Conv2d(3x3, stride 2) + ReLU, then Linear to D.

    speech [B, T, F], lengths [B] -> x [B, T', D], lengths' [B], T' = ((T - 1) // 2 - 1) // 2.

    The convolutions are unpadded, so every valid output frame reads only valid input frames and
    padding needs no masking. Inputs need at least 7 frames.
    """

    def __init__(
        self,
        in_feats: int,
        d_model: int,
        channels: int | None = None,
        dropout: float = 0.1,
        positions: bool = True,
    ):
        super().__init__()
        channels = channels or d_model
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2),
            nn.ReLU(),
        )
        f_out = ((in_feats - 1) // 2 - 1) // 2
        self.proj = nn.Linear(channels * f_out, d_model)
        self.pos = PositionalEncoding(d_model, dropout) if positions else Dropout(dropout)

    def forward(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = speech.unsqueeze(1)  # (B, 1, T, F)
        first = self.conv[0]
        if x.device.type == "cpu" and not torch.compiler.is_exporting():
            # One input channel: torch's own CPU convolution (thnn) takes 84 ms forward and
            # backward where oneDNN's takes 140 (1 -> 144 channels, 21 x 365 x 80 fbank, the
            # Conformer-CTC recipe's batch; torch 2.13, AVX2, 2 threads). Same weights.
            x = torch._C._nn.thnn_conv2d(
                x, first.weight, first.kernel_size, first.bias, first.stride, first.padding
            )
            x = self.conv[1:](x)
        else:
            x = self.conv(x)  # (B, 1, T, F) -> (B, C, T', F')
        b, c, t, f = x.shape
        x = self.proj(x.transpose(1, 2).reshape(b, t, c * f))  # (B, T', C*F') -> (B, T', D)
        lengths = conv_out_lengths(conv_out_lengths(lengths, 3, 2, 0), 3, 2, 0)
        return self.pos(x), lengths


class TokenEmbedding(nn.Module):
    """Token ids -> embedding * sqrt(D) + sinusoidal positions, dropout.

    As a front-end (MT source): forward(tokens [B, U], lengths [B]) -> (x [B, U, D], lengths).
    In a decoder: embed(tokens [B, U], start) -> x [B, U, D], positions start .. start+U-1.
    """

    def __init__(self, vocab: int, d_model: int, dropout: float = 0.1, padding_idx: int = 0):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model, padding_idx=padding_idx)
        # N(0, 1/D) so that after the sqrt(D) scale the embeddings have unit variance, like the
        # positions they are added to (fairseq's init).
        nn.init.normal_(self.embedding.weight, 0.0, d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[padding_idx].zero_()
        self.pos = PositionalEncoding(d_model, dropout)

    def embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.pos(self.embedding(tokens), start)

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(tokens), lengths
