"""Convolutional front-ends + LSTM stacks with a CTC output: the DeepSpeech2-style and CRNN
teachers and the BLSTM students of mutual-learning sequence-level KD (paper 003, 5.1.2).

Every model is a CTCModel: speech [B, T, F] (201-dim log spectrogram in the paper), lengths [B]
-> SeqOutput over frames [B, T', V] (characters, blank = 0). Presets (peerseq.models.presets):
  deepspeech2_ctc  DeepSpeech2: 2 convolutions + 5 BLSTM x 1024, directions summed (Teacher A)
  crnn_ctc         CRNN: 7 convolutions + 2 BLSTM x 1024, directions summed (Teacher B)
  blstm_ctc_wide   DS2 convolutions + 2 BLSTM x 512, directions concatenated (Student A)
  blstm_ctc_deep   DS2 convolutions + 5 BLSTM x 256, directions concatenated (Student B)
Student A is the wide one and B the deep one: the paper's Table 1 gives A 11.9 M > B 7.8 M
parameters (Table 2: 20.4% and 13.4% of Teacher A), two layers of 512 always hold more than five
of 256 with the same input, and its section 5.2.1 says "Student B has a deeper network" (its
Figure 1 caption has them the other way round).

What the paper fixes: the layer counts and widths above, a linear output layer to 29 symbols,
a spectrogram input, and convolutions in front of every model ("it is necessary to extract
higher-level feature representations using CNNs"). What it leaves open, chosen so that the
paper-size parameter counts agree with Table 1 in proportion (every pairwise ratio within 20%):
  - DeepSpeech2 convolutions as in deepspeech.pytorch: Conv2d 32 channels, kernels (11, 41) and
    (11, 21) over (time, freq), strides (2, 2) and (1, 2), BatchNorm, Hardtanh(0, 20); the
    BLSTMs sum their two directions after every layer (the DS2 paper). No BLSTM x 1024 stack
    fits Table 1's 58.3 M: with summed directions layers 2-5 alone hold 67.2 M.
  - The students: the same DS2 front-end, then bidirectional LSTMs with directions concatenated
    (torch's default); unidirectional students, or students without the front-end, come out
    2-3x too small next to any BLSTM x 1024 teacher.
  - CRNN convolutions after Shi et al.: 64-128-256-256-512-512-512 channels, 3x3 kernels (the
    last too, rather than CRNN's unpadded 2x2, so lengths stay simple), BatchNorm after
    convolutions 5 and 6, max-pooling that halves time twice (x4) and frequency four times; its
    two recurrent layers are Teacher A's kind, BLSTM x 1024 summed (CRNN's own 2 x BLSTM 256
    gives 21.6 M, far from Table 1's 54.5 M).
Every model comes out ~1.3-1.5x Table 1 (89.2 / 82.4 / 15.4 / 10.4 M against 58.3 / 54.5 /
11.9 / 7.8 M): the ratios agree, the absolute sizes do not. Bidirectional GRUs in Teacher A
(DS2's cell) and summed directions in the students would match the absolute sizes within 15%,
but contradict the paper's "BLSTM" and Table 1's "Teacher LSTM".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from peerseq.models.ctc_model import CTCModel
from peerseq.models.encoders import LSTMEncoder
from peerseq.models.frontends import conv_out_lengths
from peerseq.models.output import lengths_to_mask


class Identity(nn.Module):
    """Front-end that passes features through: (x [B, T, F], lengths) -> (x, lengths)."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, lengths


def _mask_time(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero frames at or beyond each length. x [B, C, T, F]."""
    return x.masked_fill(~lengths_to_mask(lengths, x.size(2))[:, None, :, None], 0.0)


def _without_onednn_if_slow(layer: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """layer(x), on torch's own CPU convolution where oneDNN's is pathologically slow: DS2's
    first convolution (one input channel, kernel 11 x 41, stride 2) with fewer than 16 output
    channels on a batch of one or two. Measured (torch 2.13, AVX2, 2 threads, 349 x 201 input,
    4 channels): oneDNN 147 / 320 ms for 1 / 2 utterances, 21 ms for 3; torch's own 30 / 64 ms.
    It is what decoding one file (transcribe) and a split's last small batches meet."""
    conv = layer[0]
    if torch.compiler.is_exporting():  # a traced graph (ONNX) has no backend switch
        return layer(x)
    if not (x.device.type == "cpu" and x.size(0) <= 2 and conv.in_channels == 1):
        return layer(x)
    if conv.out_channels >= 16:
        return layer(x)
    # the switch torch.backends.mkldnn.flags() sets, without its TF32 warning on every call
    was = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        return layer(x)
    finally:
        torch._C._set_mkldnn_enabled(was)


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
            self.layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, channels, k, s, p), nn.BatchNorm2d(channels), nn.Hardtanh(0, 20)
                )
            )
            f = (f + 2 * p[1] - k[1]) // s[1] + 1
            c_in = channels
        self.out_dim = channels * f

    def forward(
        self, speech: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = speech.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
        for layer, (k, s, p) in zip(self.layers, self.specs, strict=True):
            x = _without_onednn_if_slow(layer, _mask_time(x, lengths))
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
            (2, 2),
            (2, 2),
            None,
            (1, 2),
            None,
            (1, 2),
            None,
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


class SummedBLSTM(nn.Module):
    """DeepSpeech2's bidirectional LSTM stack: directions SUMMED after every layer (the DS2 paper's
    h = h_forward + h_backward; deepspeech.pytorch's BatchRNN). [B, T, D_in] -> [B, T, H].

    Each layer is a one-layer BLSTM (LSTMEncoder), whose recurrence never reads padding.
    """

    def __init__(self, input_dim: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(
            LSTMEncoder(input_dim if i == 0 else hidden, hidden, 1, True, dropout)
            for i in range(layers)
        )
        self.hidden = hidden
        self.out_dim = hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.layers:
            y, lengths = layer(x, lengths)
            x = y[..., : self.hidden] + y[..., self.hidden :]  # forward + backward
        return x, lengths


@dataclass(frozen=True)
class RecurrentCTCConfig:
    """hidden/layers of the recurrent stack; directions: "uni" (LSTM), "cat" (BLSTM, directions
    concatenated, torch's default) or "sum" (BLSTM, directions summed, DeepSpeech2); conv sizes
    for the front-end ("ds2", "crnn" or "none")."""

    hidden: int
    layers: int
    directions: str
    conv: str
    conv_channels: tuple[int, ...] = (32,)
    dropout: float = 0.0


_CRNN_PAPER = (64, 128, 256, 256, 512, 512, 512)
# small: few convolution channels, because on a CPU the convolutions' weight gradients dominate a
# training step (oneDNN's for 11 x 41 kernels over 201 frequency bins: ~75% of a small student's
# step with 8 channels; 4 channels nearly double its speed)
SIZES: dict[str, dict[str, RecurrentCTCConfig]] = {
    "deepspeech2_ctc": {  # 2 conv + 5 BLSTM x 1024, directions summed
        "paper": RecurrentCTCConfig(1024, 5, "sum", "ds2", (32,)),
        "small": RecurrentCTCConfig(256, 3, "sum", "ds2", (8,)),
        "tiny": RecurrentCTCConfig(16, 2, "sum", "ds2", (4,)),
    },
    "crnn_ctc": {  # 7 conv + 2 BLSTM x 1024 (Teacher A's recurrent layers)
        "paper": RecurrentCTCConfig(1024, 2, "sum", "crnn", _CRNN_PAPER),
        "small": RecurrentCTCConfig(192, 2, "sum", "crnn", (8, 16, 32, 32, 64, 64, 64)),
        "tiny": RecurrentCTCConfig(16, 2, "sum", "crnn", (4, 4, 8, 8, 8, 8, 8)),
    },
    "blstm_ctc_wide": {  # DS2 conv + 2 BLSTM x 512 (concatenated)
        "paper": RecurrentCTCConfig(512, 2, "cat", "ds2", (32,)),
        "small": RecurrentCTCConfig(128, 2, "cat", "ds2", (4,)),
        "tiny": RecurrentCTCConfig(32, 2, "cat", "ds2", (4,)),
    },
    "blstm_ctc_deep": {  # DS2 conv + 5 BLSTM x 256 (concatenated)
        "paper": RecurrentCTCConfig(256, 5, "cat", "ds2", (32,)),
        "small": RecurrentCTCConfig(64, 5, "cat", "ds2", (4,)),
        "tiny": RecurrentCTCConfig(16, 5, "cat", "ds2", (4,)),
    },
}


def recurrent_ctc(cfg: RecurrentCTCConfig, dims) -> CTCModel:
    """Front-end (convolutions or none) -> LSTM stack -> Linear(out_dim, vocab), blank = 0.
    DeepSpeech2 front-ends subsample time by 2, CRNN's by 4. dims: the preset's ModelDims
    (src_feats, vocab)."""
    cfg = dataclasses.replace(cfg, conv_channels=tuple(cfg.conv_channels))  # YAML gives lists
    if cfg.conv == "ds2":
        frontend: nn.Module = DeepSpeech2Conv(dims.src_feats, cfg.conv_channels[0])
        rnn_in = frontend.out_dim
    elif cfg.conv == "crnn":
        frontend = CRNNConv(dims.src_feats, cfg.conv_channels)
        rnn_in = frontend.out_dim
    else:
        frontend, rnn_in = Identity(), dims.src_feats
    encoder: nn.Module
    if cfg.directions == "sum":
        encoder = SummedBLSTM(rnn_in, cfg.hidden, cfg.layers, cfg.dropout)
    elif cfg.directions in ("cat", "uni"):
        encoder = LSTMEncoder(rnn_in, cfg.hidden, cfg.layers, cfg.directions == "cat", cfg.dropout)
    else:
        raise ValueError(f"directions: expected sum, cat or uni, got {cfg.directions!r}")
    return CTCModel(frontend, encoder, nn.Linear(encoder.out_dim, dims.vocab))
