"""Attention encoder-decoder for ST/ASR (speech in) and MT (text in), decodable incrementally.

Implements peerseq.models.incremental.IncrementalDecoding (encode / decode_step / reorder_cache).
Token ids: pad=0, bos=1, eos=2, unk=3 (peerseq.tokens).
"""

from __future__ import annotations

import torch
from torch import nn

from peerseq.models.decoder import DecoderCache, TransformerDecoder
from peerseq.models.incremental import Memory
from peerseq.models.output import SeqOutput, lengths_to_mask


class EncoderDecoder(nn.Module):
    """frontend -> encoder -> Memory; decoder(prev_tokens, Memory) -> output_layer -> log-probs.

    frontend: (src, src_lengths) -> (x [B, S, D], lengths); a speech subsampler (src [B, T, F])
        or a TokenEmbedding (src token ids [B, S]).
    encoder: (x, lengths) -> (h [B, S, D], lengths).
    decoder: a TransformerDecoder (forward / step / reorder_cache).
    output_layer: nn.Linear(D, V) over target tokens.
    ctc_head: optional nn.Linear(D, V_ctc) on encoder states (CTC auxiliary loss; blank=0).
    tie_embeddings: share output_layer.weight with the decoder's input embedding (Press & Wolf);
        output_layer must then be a Linear with the embedding's shape.
    """

    def __init__(
        self,
        frontend: nn.Module,
        encoder: nn.Module,
        decoder: TransformerDecoder,
        output_layer: nn.Linear,
        ctc_head: nn.Module | None = None,
        tie_embeddings: bool = False,
    ):
        super().__init__()
        self.frontend = frontend
        self.encoder = encoder
        self.decoder = decoder
        self.output_layer = output_layer
        self.ctc_head = ctc_head
        if tie_embeddings:
            emb = decoder.embed.embedding.weight
            if output_layer.weight.shape != emb.shape:
                raise ValueError(
                    f"cannot tie output layer {tuple(output_layer.weight.shape)} "
                    f"to decoder embedding {tuple(emb.shape)}"
                )
            output_layer.weight = emb

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory:
        """src [B, T, F] speech or [B, S] token ids, src_lengths [B] -> Memory (x [B, S', D])."""
        x, lengths = self.frontend(src, src_lengths)
        h, lengths = self.encoder(x, lengths)
        return Memory(h, lengths_to_mask(lengths, h.size(1)))

    def decode(
        self, prev_tokens: torch.Tensor, tgt_lengths: torch.Tensor, memory: Memory
    ) -> SeqOutput:
        """Teacher forcing: prev_tokens [B, U] (BOS + target[:-1]) -> SeqOutput [B, U, V]."""
        hidden = self.decoder(prev_tokens, memory)
        return SeqOutput.from_logits(self.output_layer(hidden), tgt_lengths, hidden)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        prev_tokens: torch.Tensor,
        tgt_lengths: torch.Tensor,
    ) -> SeqOutput:
        """-> SeqOutput over target positions; hidden = decoder states [B, U, D]."""
        return self.decode(prev_tokens, tgt_lengths, self.encode(src, src_lengths))

    def ctc(self, memory: Memory) -> SeqOutput:
        """CTC posteriors over encoder frames [B, S', V_ctc]; hidden = encoder states."""
        if self.ctc_head is None:
            raise ValueError("this EncoderDecoder was built without a ctc_head")
        return SeqOutput.from_logits(self.ctc_head(memory.x), memory.mask.sum(1), memory.x)

    def decode_step(
        self, tokens: torch.Tensor, memory: Memory, cache: DecoderCache | None
    ) -> tuple[torch.Tensor, DecoderCache]:
        """tokens [N, t] (BOS first, last one new), memory with N rows
        -> (log_probs [N, V], cache)."""
        hidden, cache = self.decoder.step(tokens, memory, cache)
        return torch.log_softmax(self.output_layer(hidden).float(), dim=-1), cache

    def reorder_cache(self, cache: DecoderCache, index: torch.Tensor) -> DecoderCache:
        return self.decoder.reorder_cache(cache, index)
