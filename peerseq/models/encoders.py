"""Encoders: forward(x [B, T, D], lengths [B]) -> (y [B, T, D_out], lengths [B]).

Inputs already carry positions (added by the front-end, see frontends.py). Outputs are zero on
padded frames, so CTC heads, poolings and L2 links never read garbage there.

MultiHeadAttention and FeedForward (feedforward.py) are shared with the Transformer decoder
(decoder.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from peerseq.models.dropout import Dropout, dropout
from peerseq.models.feedforward import FeedForward
from peerseq.models.output import lengths_to_mask


class MultiHeadAttention(nn.Module):
    """Multi-head attention on torch's fused scaled_dot_product_attention.

    The key/value projection is a separate method so an incremental decoder can cache projected
    keys/values: forward(q_in, kv_in, mask) == attend(q_in, *project_kv(kv_in), mask).
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.heads = heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # -> (B, H, T, D/H)

    def project_kv(self, kv_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """kv_in [B, S, D] -> keys, values, each [B, H, S, D/H]."""
        k, v = self.kv_proj(kv_in).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def attend(
        self,
        q_in: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """q_in [B, T, D], k/v [B, H, S, D/H] -> [B, T, D].

        mask: bool, True where a query may attend a key, broadcastable to [B, H, T, S]
        (a key padding mask is [B, 1, 1, S]). causal: top-left-aligned causal mask (T == S).
        """
        q = self._split(self.q_proj(q_in))
        if self.training and self.dropout > 0 and q.device.type == "cpu":
            y = attention_with_dropout(q, k, v, mask, causal, self.dropout)
        else:
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=causal,
            )
        b, h, t, dh = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, h * dh))  # (B, H, T, D/H) -> (B, T, D)

    def forward(
        self,
        q_in: torch.Tensor,
        kv_in: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        return self.attend(q_in, *self.project_kv(kv_in), mask=mask, causal=causal)


def attention_with_dropout(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    causal: bool,
    p: float,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) with dropout on the probabilities, times v; q [B, H, T, D],
    k/v [B, H, S, D] -> [B, H, T, D]. What scaled_dot_product_attention computes in training on a
    CPU, where with dropout it takes its unfused path and draws the mask with bernoulli_; here
    the mask comes from peerseq's cheaper dropout. A query that may attend no key (a zero-length
    sequence) gets uniform weights instead of NaN."""
    # scaling q rather than the scores: q [B, H, T, D] is smaller than the scores [B, H, T, S],
    # and the product is the contiguous copy the matrix product would otherwise make of it
    scores = torch.matmul(q * q.size(-1) ** -0.5, k.transpose(-2, -1))  # [B, H, T, S]
    if mask is not None and not causal and bool(mask.all()):
        mask = None  # no key is padded: nothing to fill (a check on [B, 1, 1, S], not on scores)
    if causal:
        t, s = scores.shape[-2:]
        allowed = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
        mask = allowed if mask is None else mask & allowed
    if mask is not None:
        scores = scores.masked_fill_(~mask, torch.finfo(scores.dtype).min)
    return torch.matmul(dropout(torch.softmax(scores, dim=-1), p), v)


def key_padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """lengths [B] -> bool [B, 1, 1, T] for SDPA: True on keys that may be attended."""
    return lengths_to_mask(lengths, t)[:, None, None, :]


class TransformerEncoderLayer(nn.Module):
    """Pre-norm block: x + MHSA(LN(x)), then x + FFN(LN(x)). Pre-norm trains without warm-up
    tricks at depth 12 and is what fairseq's s2t uses (normalize_before=True)."""

    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float = 0.1):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn, dropout)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x)
        x = x + self.dropout(self.attn(h, h, mask))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class TransformerEncoder(nn.Module):
    """Stack of pre-norm Transformer layers and a final LayerNorm. [B, T, D] -> [B, T, D]."""

    def __init__(self, d_model: int, heads: int, ffn: int, layers: int, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, heads, ffn, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = key_padding_mask(lengths, x.size(1))
        for layer in self.layers:
            x = layer(x, mask)
        x = self.norm(x)
        return x.masked_fill(~mask[:, 0, 0, :, None], 0.0), lengths


class ConvModule(nn.Module):
    """Conformer convolution module (Gulati et al. 2020), [B, T, D] -> [B, T, D]:
    LN -> pointwise conv (D -> 2D) -> GLU -> depthwise conv (kernel k) -> BatchNorm -> Swish ->
    pointwise conv -> dropout.

    Padded frames are zeroed before the depthwise convolution, so they cannot leak into valid
    frames at the sequence end. BatchNorm follows the paper; in training its batch statistics
    include the (zeroed) padded frames, in eval it is per-frame and padding-independent.
    """

    def __init__(self, d_model: int, kernel_size: int = 31, dropout: float = 0.1):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conformer conv kernel must be odd (same padding), got {kernel_size}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise1 = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(
            d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model
        )
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.pointwise2 = nn.Conv1d(d_model, d_model, 1)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], valid [B, T] bool."""
        h = self.norm(x).transpose(1, 2)  # (B, T, D) -> (B, D, T)
        h = F.glu(self.pointwise1(h), dim=1)
        h = h.masked_fill(~valid[:, None, :], 0.0)
        h = F.silu(self.batch_norm(self.depthwise(h)))
        return self.dropout(self.pointwise2(h).transpose(1, 2))  # (B, D, T) -> (B, T, D)


class ConformerLayer(nn.Module):
    """Macaron block: x + FFN/2, x + MHSA, x + Conv, x + FFN/2, then LayerNorm.

    Attention uses the absolute positions added by the front-end, not relative positions: this
    keeps the fused SDPA kernel; the relative-position variant is left out.
    """

    def __init__(
        self, d_model: int, heads: int, ffn: int, kernel_size: int = 31, dropout: float = 0.1
    ):
        super().__init__()
        self.ffn1_norm = nn.LayerNorm(d_model)
        self.ffn1 = FeedForward(d_model, ffn, dropout, activation=nn.SiLU)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.conv = ConvModule(d_model, kernel_size, dropout)
        self.ffn2_norm = nn.LayerNorm(d_model)
        self.ffn2 = FeedForward(d_model, ffn, dropout, activation=nn.SiLU)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], mask [B, 1, 1, T] (SDPA key mask), valid [B, T]."""
        x = x + 0.5 * self.dropout(self.ffn1(self.ffn1_norm(x)))
        h = self.attn_norm(x)
        x = x + self.dropout(self.attn(h, h, mask))
        x = x + self.conv(x, valid)
        x = x + 0.5 * self.dropout(self.ffn2(self.ffn2_norm(x)))
        return self.norm(x)


class ConformerEncoder(nn.Module):
    """Stack of Conformer layers. [B, T, D] -> [B, T, D] (each layer ends with a LayerNorm)."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        ffn: int,
        layers: int,
        kernel_size: int = 31,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            ConformerLayer(d_model, heads, ffn, kernel_size, dropout) for _ in range(layers)
        )
        self.out_dim = d_model

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = lengths_to_mask(lengths, x.size(1))
        mask = valid[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask, valid)
        return x.masked_fill(~valid[..., None], 0.0), lengths


class LSTMEncoder(nn.Module):
    """nn.LSTM stack, bidirectional or not. [B, T, D_in] -> [B, T, H * (2 if bidirectional)].

    Padding never enters the recurrence: each direction of each layer runs as one fused
    unidirectional LSTM over the padded batch, the backward direction over every sequence
    reversed within its own length (so it starts at the sequence's own last frame, and padded
    frames come after the valid ones in both directions, where they cannot reach them). Outputs
    on padded frames are zero. The parameters are nn.LSTM's own (same names, same checkpoints).

    Why not pack_padded_sequence: with packed sequences of unequal lengths PyTorch's CPU LSTM
    leaves oneDNN's fused kernel for a per-time-step loop of small matmuls, 2x (students) to 7x
    (hidden 256) slower in training here (measured on 201-dim spectrogram batches, torch 2.13).
    The padding this computes instead is the length-bucketed batch's, a few percent.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        layers: int,
        bidirectional: bool = True,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.lstm = nn.LSTM(
            input_dim,
            hidden,
            layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,  # nn.LSTM applies it between layers only
        )
        self.dropout = Dropout(dropout)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def _direction(self, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        """One direction of one layer: [B, T, D] -> [B, T, H], fused (torch.lstm, one layer)."""
        lstm = self.lstm
        weights = [getattr(lstm, f"{n}_l{layer}{suffix}") for n in ("weight_ih", "weight_hh")]
        if lstm.bias:
            weights += [getattr(lstm, f"{n}_l{layer}{suffix}") for n in ("bias_ih", "bias_hh")]
        h0 = x.new_zeros(1, x.size(0), lstm.hidden_size)
        y, _, _ = torch.lstm(x, (h0, h0), weights, lstm.bias, 1, 0.0, self.training, False, True)
        return y

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = x.size(1)
        steps = torch.arange(t, device=x.device)
        lens = lengths.to(x.device)[:, None]
        # per row, frame i of the reversed sequence: L-1-i within the length, i itself after it
        flip = torch.where(steps < lens, lens - 1 - steps, steps)  # [B, T]
        flip = flip[..., None]
        valid = (steps < lens)[..., None]  # [B, T, 1]
        for layer in range(self.lstm.num_layers):
            if layer > 0 and self.lstm.dropout > 0:
                x = dropout(x, self.lstm.dropout, self.training)
            y = self._direction(x, layer, "")
            if self.lstm.bidirectional:
                rev = x.gather(1, flip.expand(-1, -1, x.size(2)))
                back = self._direction(rev, layer, "_reverse")
                back = back.gather(1, flip.expand(-1, -1, back.size(2)))
                y = torch.cat([y, back], dim=-1)
            x = y
        return self.dropout(x.masked_fill(~valid, 0.0)), lengths
