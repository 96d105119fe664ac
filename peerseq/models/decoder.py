"""Transformer decoder with teacher forcing and cached incremental decoding.

forward(tokens [B, U], memory) -> hidden [B, U, D]      (teacher forcing, causal self-attention)
step(tokens [N, t], memory, cache) -> (hidden [N, D], cache)   (one new position per call)

The cache holds, per layer, the projected self-attention keys/values of all earlier positions and
the projected cross-attention keys/values of the memory (computed once on the first step, as
fairseq's static_kv): a step costs O(t) instead of re-running the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from peerseq.models.dropout import Dropout
from peerseq.models.encoders import MultiHeadAttention
from peerseq.models.feedforward import FeedForward
from peerseq.models.frontends import TokenEmbedding
from peerseq.models.incremental import Memory


@dataclass
class LayerCache:
    """One layer's cached keys/values, each [N, H, *, D/H] (* = positions so far, or S)."""

    self_k: torch.Tensor
    self_v: torch.Tensor
    mem_k: torch.Tensor
    mem_v: torch.Tensor

    def index_select(self, index: torch.Tensor) -> LayerCache:
        return LayerCache(
            *(t.index_select(0, index) for t in (self.self_k, self.self_v, self.mem_k, self.mem_v))
        )


DecoderCache = list[LayerCache]


class TransformerDecoderLayer(nn.Module):
    """Pre-norm: x + SelfAttn(LN x) (causal), x + CrossAttn(LN x, memory), x + FFN(LN x)."""

    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float = 0.1):
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_norm = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn, dropout)
        self.dropout = Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: Memory,
        cache: LayerCache | None = None,
        keep_cache: bool = False,
    ) -> tuple[torch.Tensor, LayerCache | None]:
        """x [N, n, D] new positions (after `cache`'s positions) -> ([N, n, D], updated cache).

        Without a cache the n positions are the whole prefix (teacher forcing).
        """
        h = self.self_norm(x)
        k, v = self.self_attn.project_kv(h)  # [N, H, n, D/H]
        past = 0 if cache is None else cache.self_k.size(2)
        if cache is not None:
            k = torch.cat([cache.self_k, k], dim=2)
            v = torch.cat([cache.self_v, v], dim=2)
        n = x.size(1)
        if past == 0:
            y = self.self_attn.attend(h, k, v, causal=True)
        elif n == 1:
            y = self.self_attn.attend(h, k, v)  # the newest position may see every earlier one
        else:  # several new positions after a cached prefix: causal mask shifted by `past`
            q_pos = torch.arange(past, past + n, device=x.device)
            allowed = torch.arange(past + n, device=x.device)[None, :] <= q_pos[:, None]
            y = self.self_attn.attend(h, k, v, mask=allowed)
        x = x + self.dropout(y)

        if cache is not None:
            mem_k, mem_v = cache.mem_k, cache.mem_v
        else:
            mem_k, mem_v = self.cross_attn.project_kv(memory.x)
        h = self.cross_norm(x)
        x = x + self.dropout(self.cross_attn.attend(h, mem_k, mem_v, memory.mask[:, None, None, :]))
        x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        new_cache = LayerCache(k, v, mem_k, mem_v) if keep_cache or cache is not None else None
        return x, new_cache


class TransformerDecoder(nn.Module):
    """Token embedding (with positions), pre-norm decoder layers, final LayerNorm.

    Returns hidden states; the output projection lives in the model (EncoderDecoder) so that it
    can be tied to `self.embed.embedding`.
    """

    def __init__(
        self,
        vocab: int,
        d_model: int,
        heads: int,
        ffn: int,
        layers: int,
        dropout: float = 0.1,
        padding_idx: int = 0,
    ):
        super().__init__()
        self.embed = TokenEmbedding(vocab, d_model, dropout, padding_idx)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d_model, heads, ffn, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model

    def forward(self, tokens: torch.Tensor, memory: Memory) -> torch.Tensor:
        """tokens [B, U] (BOS + target[:-1], padded anywhere after the valid part),
        memory with B rows -> hidden [B, U, D]. Position u sees tokens[:, :u+1] only."""
        x = self.embed.embed(tokens)
        for layer in self.layers:
            x, _ = layer(x, memory)
        return self.norm(x)

    def step(
        self, tokens: torch.Tensor, memory: Memory, cache: DecoderCache | None
    ) -> tuple[torch.Tensor, DecoderCache]:
        """tokens [N, t] all tokens so far (BOS first); cache None or holding positions < t'.

        Runs the positions the cache lacks (usually just the last one; all of them when cache is
        None, so a forced prefix works) -> (hidden of position t-1 [N, D], cache for t positions).
        """
        past = 0 if cache is None else cache[0].self_k.size(2)
        if past >= tokens.size(1):
            raise ValueError(
                f"cache already holds {past} positions but only {tokens.size(1)} "
                "tokens were given: pass all tokens so far, the new one last"
            )
        x = self.embed.embed(tokens[:, past:], start=past)
        new_cache: DecoderCache = []
        for i, layer in enumerate(self.layers):
            x, layer_cache = layer(x, memory, None if cache is None else cache[i], keep_cache=True)
            new_cache.append(layer_cache)
        return self.norm(x[:, -1]), new_cache

    @staticmethod
    def reorder_cache(cache: DecoderCache, index: torch.Tensor) -> DecoderCache:
        """Rows picked/repeated by index [N'] (beam search reordering or pruning)."""
        return [layer_cache.index_select(index) for layer_cache in cache]
