"""Paper 002's EM-Network auxiliary network (rho): fuses the target into the source representation.

The EM-Network is the sequence model (theta) plus this auxiliary network, added "on top of" the
sequence model and removed at inference (paper 002, 2.1-2.2). Appendix C: self- and cross-attention
modules with feed-forward layers, layer normalization and residual connections; the cross-attention
takes the representation of x as the query and the representation of y as keys/values.

Our reading, for both forms (the paper's Figure 2 puts the auxiliary network between the sequence
model's last representation and its output layer):
  query:  the representation the sequence model's output layer reads, SeqOutput.hidden, [B, S, D]
          - CTC: encoder states over frames (S = T');
          - AED: teacher-forced decoder states over target positions (S = U).
  keys/values: the target y (CTC, full target) or M(y, lambda) (AED, masked with mask_target, so
          that P(y | x, y~) cannot collapse to copying y), embedded and self-attended.
  output: [B, S, D], the query's length, fed to the sequence model's OWN output layer. The output
          layer is shared and NOT owned by this module: the caller passes it (em_output below), so
          count_parameters(aux) counts rho only and dropping aux leaves theta intact.
So for AED no separate decoder adapter is needed: the auxiliary network reads the decoder states and
its output replaces them before the shared output layer, exactly as for CTC. (An alternative
reading - adding target context to the decoder's memory - is not what the paper's "x as query, y
as key/value on top of the sequence model" describes, and is not implemented.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from peerseq.models.dropout import Dropout
from peerseq.models.encoders import MultiHeadAttention, TransformerEncoderLayer
from peerseq.models.feedforward import FeedForward
from peerseq.models.frontends import TokenEmbedding
from peerseq.models.output import SeqOutput, lengths_to_mask


def mask_target(
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    lam: float,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """M(y, lambda): replace each valid token of tokens [B, U] by mask_id with probability lam.

    Positions at or beyond lengths [B] (padding) are never touched. lam=0 returns the tokens
    unchanged, lam=1 masks every valid token. Pure: returns a new tensor; deterministic given a
    seeded generator (which must live on tokens' device).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"masking probability must be in [0, 1], got {lam}")
    valid = lengths_to_mask(lengths, tokens.size(1))
    draw = torch.rand(tokens.shape, generator=generator, device=tokens.device)  # in [0, 1)
    return tokens.masked_fill(valid & (draw < lam), mask_id)


class CrossAttentionLayer(nn.Module):
    """Pre-norm: x + MHA(LN(x), LN(y)), then x + FFN(LN(x)). x [B, S, D] queries y [B, U, D]."""

    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float = 0.1):
        super().__init__()
        self.query_norm = nn.LayerNorm(d_model)
        self.memory_norm = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn, dropout)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        """y_mask: [B, 1, 1, U] keys that may be attended."""
        x = x + self.dropout(self.attn(self.query_norm(x), self.memory_norm(y), y_mask))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class EMAuxiliaryNetwork(nn.Module):
    """rho: (source states [B, S, D_src], target tokens [B, U]) -> fused states [B, S, D_src].

    vocab: size of the target embedding; for the AED form include a mask token (e.g. vocab + 1
        with mask_id = vocab). padding_idx: the target padding id (0: CTC blank / AED pad).
    src_dim: D_src of the sequence model's states; if it differs from d_model, linear
        projections map in and out (they belong to rho).
    target_layers: pre-norm self-attention + FFN blocks over the embedded target.
    cross_layers: CrossAttentionLayer blocks, source as query and target as key/value.
    """

    def __init__(
        self,
        vocab: int,
        d_model: int,
        heads: int,
        ffn: int,
        target_layers: int = 1,
        cross_layers: int = 1,
        dropout: float = 0.1,
        src_dim: int | None = None,
        padding_idx: int = 0,
    ):
        super().__init__()
        src_dim = src_dim or d_model
        self.embed = TokenEmbedding(vocab, d_model, dropout, padding_idx)
        self.target_layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, heads, ffn, dropout) for _ in range(target_layers)
        )
        self.in_proj = nn.Linear(src_dim, d_model) if src_dim != d_model else nn.Identity()
        self.cross_layers = nn.ModuleList(
            CrossAttentionLayer(d_model, heads, ffn, dropout) for _ in range(cross_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.out_proj = nn.Linear(d_model, src_dim) if src_dim != d_model else nn.Identity()

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """src [B, S, D_src], tokens [B, U] (full or masked target) -> [B, S, D_src], zero on
        source padding."""
        # an empty target would leave a query row with no key (NaN in SDPA): let it see position 0
        y_mask = lengths_to_mask(token_lengths.clamp(min=1), tokens.size(1))[:, None, None, :]
        y = self.embed.embed(tokens)  # [B, U] -> [B, U, D]
        for layer in self.target_layers:
            y = layer(y, y_mask)
        x = self.in_proj(src)
        for layer in self.cross_layers:
            x = layer(x, y, y_mask)
        x = self.out_proj(self.norm(x))
        return x.masked_fill(~lengths_to_mask(src_lengths, x.size(1))[..., None], 0.0)


def em_output(
    aux: EMAuxiliaryNetwork,
    output_layer: nn.Module,
    seq_out: SeqOutput,
    tokens: torch.Tensor,
    token_lengths: torch.Tensor,
) -> SeqOutput:
    """The EM-Network's prediction (teacher mode) from the sequence model's own output.

    seq_out: the sequence model's SeqOutput (student mode); its hidden states are the query.
      CTC: model(speech, lengths); tokens = the full target y.
      AED: model(src, src_lengths, prev_tokens, tgt_lengths); tokens = mask_target(y, ...).
    output_layer: the sequence model's output layer (shared, e.g. model.output_layer).
    -> SeqOutput over the same positions and lengths as seq_out; hidden = aux states.
    """
    if seq_out.hidden is None:
        raise ValueError("the sequence model's SeqOutput has no hidden states to attend from")
    hidden = aux(seq_out.hidden, seq_out.lengths, tokens, token_lengths)
    return SeqOutput.from_logits(output_layer(hidden), seq_out.lengths, hidden)


class EMNetwork(nn.Module):
    """The EM-Network in teacher mode, as a peer: the auxiliary network plus the sequence
    model's own output layer (shared: the same nn.Linear object, so its parameters belong to
    the sequence model and are updated once per step).

    forward(seq_out, tokens, token_lengths) -> SeqOutput over seq_out's positions.
    mask_prob > 0 (AED form, paper 002 Eq. 5-7): while training, tokens are masked with
    mask_target(lambda = mask_prob) using mask id vocab (the auxiliary embedding's extra row).
    """

    def __init__(self, aux: EMAuxiliaryNetwork, output_layer: nn.Module, mask_prob: float = 0.0):
        super().__init__()
        self.aux = aux
        self.output_layer = output_layer
        self.mask_prob = mask_prob
        self.mask_id = aux.embed.embedding.num_embeddings - 1

    def forward(
        self, seq_out: SeqOutput, tokens: torch.Tensor, token_lengths: torch.Tensor
    ) -> SeqOutput:
        if self.mask_prob > 0 and self.training:
            tokens = mask_target(tokens, token_lengths, self.mask_prob, self.mask_id)
        return em_output(self.aux, self.output_layer, seq_out, tokens, token_lengths)


@dataclass(frozen=True)
class EMConfig:
    """The auxiliary network's sizes; d_model None follows the sequence model's states, ffn None
    is 4 x the sequence model's width. mask_prob: lambda of M(y, lambda), the share of target
    tokens masked (paper 002's encoder-decoder form; 0 for CTC, which sees the whole target)."""

    d_model: int | None = None
    heads: int = 4
    ffn: int | None = None
    target_layers: int = 1
    cross_layers: int = 1
    dropout: float = 0.1
    mask_prob: float = 0.0


def em_network(cfg: EMConfig, dims) -> EMNetwork:
    """An EM-Network on top of dims.upstream, the sequence model (its output_layer is shared);
    dims.vocab: the target vocabulary the auxiliary network embeds."""
    seq_model = dims.upstream
    if seq_model is None or not hasattr(seq_model, "output_layer"):
        raise ValueError("em_network sits on an earlier peer's model: give it reads: '@PEER'")
    src_dim = seq_model.output_layer.in_features
    d_model = cfg.d_model or src_dim
    aux = EMAuxiliaryNetwork(
        dims.vocab + (1 if cfg.mask_prob > 0 else 0),  # + the mask token
        d_model,
        cfg.heads,
        cfg.ffn or 4 * src_dim,
        cfg.target_layers,
        cfg.cross_layers,
        cfg.dropout,
        src_dim=src_dim,
    )
    return EMNetwork(aux, seq_model.output_layer, cfg.mask_prob)
