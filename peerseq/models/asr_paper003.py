"""Paper 003's CTC models (mutual-learning sequence-level KD): two teachers, two students.

build_paper003("teacher_a" | "teacher_b" | "student_a" | "student_b", size, feat_dim, vocab).
Every model is a CTCModel: speech [B, T, F] (201-dim log spectrogram), lengths [B] -> SeqOutput
over frames [B, T', 29] (characters, blank = 0).

Section 5.1 of the paper fixes: Teacher A = DeepSpeech2, two convolutions + five BLSTM layers of
1024 units; Teacher B = CRNN, seven convolutions + two recurrent layers + a transcription layer;
Student A ("deep") = five LSTM layers of 256; Student B ("wide") = two LSTM layers of 512; every
output layer is a linear projection to 29. Everything else is our choice, marked "(ours)" below:
  - DeepSpeech2 convolutions follow DS2 / deepspeech.pytorch: Conv2d 32 ch, kernels (11, 41) and
    (11, 21) over (time, freq), strides (2, 2) and (1, 2), BatchNorm, Hardtanh(0, 20).
  - CRNN convolutions follow Shi et al. (the paper's ref [51]): 64-128-256-256-512-512-512
    channels, 3x3 kernels (the last one 3x3 too, not CRNN's unpadded 2x2, so lengths stay simple),
    BatchNorm after conv 5 and 6, max-pooling that halves time twice (x4) and frequency four times.
    Its two recurrent layers are BLSTMs of 256 units, as CRNN's.
  - Teacher BLSTMs concatenate directions (LSTMEncoder); students are unidirectional, because the
    paper says "LSTM" for students and "BLSTM" for the teacher.
Paper-size parameter counts do NOT match the paper's Table 1 (see table1() and the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from peerseq.models.ctc_model import CTCModel
from peerseq.models.encoders import LSTMEncoder
from peerseq.models.frontends import conv_out_lengths
from peerseq.models.output import lengths_to_mask

# Table 1 of paper 003 (millions of parameters); Student A is the deep one, B the wide one.
PAPER_TABLE1 = {"teacher_a": 58.3e6, "teacher_b": 54.5e6, "student_a": 11.9e6, "student_b": 7.8e6}


class Identity(nn.Module):
    """Front-end that passes features through: (x [B, T, F], lengths) -> (x, lengths)."""

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return x, lengths


def _mask_time(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero frames at or beyond each length. x [B, C, T, F]."""
    return x.masked_fill(~lengths_to_mask(lengths, x.size(2))[:, None, :, None], 0.0)


class DeepSpeech2Conv(nn.Module):
    """DS2's two 2-D convolutions over (time, frequency). [B, T, F] -> [B, T', C * F''].

    Time: kernel 11, padding 5, stride 2 then 1, so T' = (T - 1) // 2 + 1. Padded frames are
    zeroed before each convolution (deepspeech.pytorch's MaskConv), so a sequence gives the same
    valid outputs alone or padded in a batch (in eval mode; BatchNorm trains on batch statistics).
    """

    def __init__(self, feat_dim: int, channels: int = 32):
        super().__init__()
        # (kernel_t, kernel_f), (stride_t, stride_f), (pad_t, pad_f)
        self.specs = [((11, 41), (2, 2), (5, 20)), ((11, 21), (1, 2), (5, 10))]
        self.layers = nn.ModuleList()
        f, c_in = feat_dim, 1
        for k, s, p in self.specs:
            self.layers.append(nn.Sequential(
                nn.Conv2d(c_in, channels, k, s, p), nn.BatchNorm2d(channels), nn.Hardtanh(0, 20)
            ))
            f = (f + 2 * p[1] - k[1]) // s[1] + 1
            c_in = channels
        self.out_dim = channels * f

    def forward(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = speech.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        for layer, (k, s, p) in zip(self.layers, self.specs, strict=True):
            x = layer(_mask_time(x, lengths))
            lengths = conv_out_lengths(lengths, k[0], s[0], p[0])
        b, c, t, f = x.shape
        x = _mask_time(x, lengths)
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (B, C, T', F') -> (B, T', C*F')
        return x, lengths


class CRNNConv(nn.Module):
    """CRNN's seven 3x3 convolutions with max-pooling. [B, T, F] -> [B, T // 4, C * F'].

    pools: per conv layer, the (time, freq) max-pool after it, or None. A time pool of 2 maps
    lengths L -> L // 2 (only frames built entirely from valid frames are kept). Padded frames are
    zeroed before every convolution, as in DeepSpeech2Conv.
    """

    def __init__(
        self,
        feat_dim: int,
        channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512, 512),
        batch_norm: tuple[bool, ...] = (False, False, False, False, True, True, False),
        pools: tuple[tuple[int, int] | None, ...] = (
            (2, 2), (2, 2), None, (1, 2), None, (1, 2), None
        ),
    ):
        super().__init__()
        self.pools = pools
        self.convs = nn.ModuleList()
        c_in, f = 1, feat_dim
        for c, bn, pool in zip(channels, batch_norm, pools, strict=True):
            block = [nn.Conv2d(c_in, c, 3, padding=1)]
            block += [nn.BatchNorm2d(c)] if bn else []
            block += [nn.ReLU()]
            block += [nn.MaxPool2d(pool)] if pool else []
            self.convs.append(nn.Sequential(*block))
            c_in, f = c, f // pool[1] if pool else f
        self.out_dim = c_in * f

    def forward(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = speech.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        for block, pool in zip(self.convs, self.pools, strict=True):
            x = block(_mask_time(x, lengths))
            if pool:
                lengths = torch.div(lengths, pool[0], rounding_mode="floor")
        b, c, t, f = x.shape
        x = _mask_time(x, lengths)
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (B, C, T', F') -> (B, T', C*F')
        return x, lengths


@dataclass(frozen=True)
class Paper003Config:
    """hidden/layers of the recurrent stack; conv sizes for the teachers' front-ends."""

    hidden: int
    layers: int
    bidirectional: bool
    conv: str  # "ds2", "crnn" or "none"
    conv_channels: tuple[int, ...] = (32,)
    dropout: float = 0.0


_CRNN_PAPER = (64, 128, 256, 256, 512, 512, 512)
CONFIGS: dict[str, dict[str, Paper003Config]] = {
    "teacher_a": {
        "paper": Paper003Config(1024, 5, True, "ds2", (32,)),
        "small": Paper003Config(256, 3, True, "ds2", (16,)),
        "tiny": Paper003Config(16, 2, True, "ds2", (4,)),
    },
    "teacher_b": {
        "paper": Paper003Config(256, 2, True, "crnn", _CRNN_PAPER),
        "small": Paper003Config(128, 2, True, "crnn", (16, 32, 64, 64, 128, 128, 128)),
        "tiny": Paper003Config(16, 2, True, "crnn", (4, 4, 8, 8, 8, 8, 8)),
    },
    "student_a": {  # deep
        "paper": Paper003Config(256, 5, False, "none"),
        "small": Paper003Config(128, 5, False, "none"),
        "tiny": Paper003Config(16, 5, False, "none"),
    },
    "student_b": {  # wide
        "paper": Paper003Config(512, 2, False, "none"),
        "small": Paper003Config(256, 2, False, "none"),
        "tiny": Paper003Config(32, 2, False, "none"),
    },
}


def build_paper003(
    name: str, size: str = "paper", feat_dim: int = 201, vocab: int = 29
) -> CTCModel:
    """Front-end (convs or none) -> LSTM stack (packed) -> Linear(out_dim, vocab), blank = 0."""
    if name not in CONFIGS:
        raise ValueError(f"unknown paper-003 model {name!r}; known: {sorted(CONFIGS)}")
    if size not in CONFIGS[name]:
        raise ValueError(f"unknown size {size!r}; known: {sorted(CONFIGS[name])}")
    cfg = CONFIGS[name][size]
    if cfg.conv == "ds2":
        frontend: nn.Module = DeepSpeech2Conv(feat_dim, cfg.conv_channels[0])
        rnn_in = frontend.out_dim
    elif cfg.conv == "crnn":
        frontend = CRNNConv(feat_dim, cfg.conv_channels)
        rnn_in = frontend.out_dim
    else:
        frontend, rnn_in = Identity(), feat_dim
    encoder = LSTMEncoder(rnn_in, cfg.hidden, cfg.layers, cfg.bidirectional, cfg.dropout)
    return CTCModel(frontend, encoder, nn.Linear(encoder.out_dim, vocab))


def table1(feat_dim: int = 201, vocab: int = 29) -> dict[str, dict[str, int]]:
    """Paper-size parameter counts: {name: {"ours": n, "paper": n}} (paper = Table 1)."""
    from peerseq.models.presets import count_parameters

    out = {}
    for name, paper in PAPER_TABLE1.items():
        # meta device: counts without allocating the ~100 M parameters
        with torch.device("meta"):
            model = build_paper003(name, "paper", feat_dim, vocab)
        out[name] = {"ours": count_parameters(model), "paper": int(paper)}
    return out
