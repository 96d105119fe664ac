"""Decoding one peer over batches, the one path for evaluation and for teachers' labels.

Encoder-decoders: batched beam search. CTC models: greedy for the 1-best (papers 002 and 003
decode CTC greedily), prefix beam search when k-best lists are asked for (sequence-level KD).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from peerseq.data.batching import Batch
from peerseq.engine.peer import Peer, is_seq2seq, unwrap
from peerseq.experiment import DecodeConfig
from peerseq.models.output import SeqOutput
from peerseq.search.beam_search import beam_search
from peerseq.search.ctc import ctc_greedy, ctc_prefix_beam_search


@dataclass
class Decoded:
    """Utterance ids, hypotheses and references, in decoding order."""

    ids: list[str]
    hyps: list[str]
    refs: list[str]


def max_len_a(peer: Peer, cfg: DecodeConfig) -> float:
    """Max output length per input position: cfg's, scaled for speech (10 ms frames)."""
    return cfg.max_len_a * (0.1 if peer.reads == "speech" else 1.0)


@torch.no_grad()
def batch_hypotheses(
    peer: Peer,
    batch: Batch,
    cfg: DecodeConfig,
    k: int | None = None,
    out: SeqOutput | None = None,
) -> list[list[list[int]]]:
    """Per utterance of a batch (on the model's device) its hypotheses as token-id lists, best
    first; k=None: the 1-best as the peer is evaluated; k: up to k, the beam at least k. out:
    the CTC model's eval-mode output for this batch when the caller has it (validation computes
    it for the loss already), instead of running the model again. The model must be in eval
    mode."""
    model = unwrap(peer.model)
    src, src_lengths = peer.inputs(batch)
    beam = cfg.beam if k is None else max(cfg.beam, k)
    if is_seq2seq(model):
        hyps = beam_search(
            model,
            src,
            src_lengths,
            beam=beam,
            k=k or 1,
            max_len_a=max_len_a(peer, cfg),
            max_len_b=cfg.max_len_b,
            len_penalty=cfg.len_penalty,
        )
        return [[h.tokens for h in hs] for hs in hyps]
    out = out if out is not None else model(src, src_lengths)
    if k is None:
        return [[seq] for seq in ctc_greedy(out.log_probs, out.lengths)]
    kbest = ctc_prefix_beam_search(out.log_probs, out.lengths, beam=beam, k=k)
    return [[toks for toks, _ in hs] for hs in kbest]


def hypotheses(
    peer: Peer,
    batches: Iterable[Batch],
    cfg: DecodeConfig,
    device: torch.device,
    k: int | None = None,
) -> Iterator[tuple[Batch, list[list[list[int]]]]]:
    """(batch on device, batch_hypotheses of it) for every batch. The model is in eval mode
    meanwhile and put back as it was."""
    model = unwrap(peer.model)
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            batch = batch.to(device)
            yield batch, batch_hypotheses(peer, batch, cfg, k)
    finally:
        model.train(was_training)


def add_1best(
    decoded: Decoded, batch: Batch, hyps: list[list[list[int]]], tokenizer, column: str
) -> None:
    """Append a batch's 1-best texts and the references of `column` to decoded (CTC
    references normalised the way the character tokenizer sees text, when the tokenizer
    normalises: chars and spm_asr)."""
    refs = batch.texts[column]
    if normalize := getattr(tokenizer, "normalize", None):
        refs = [normalize(r) for r in refs]
    decoded.ids += batch.ids
    decoded.hyps += [tokenizer.decode(hs[0] if hs else []) for hs in hyps]
    decoded.refs += refs


def decode_peer(
    peer: Peer,
    batches: Iterable[Batch],
    tokenizer,
    column: str,
    cfg: DecodeConfig,
    device: torch.device,
) -> Decoded:
    """The peer's 1-best text for every utterance, with the references of `column`."""
    out = Decoded([], [], [])
    for batch, hyps in hypotheses(peer, batches, cfg, device):
        add_1best(out, batch, hyps, tokenizer, column)
    return out
