"""Decoding one peer over a split and scoring it: used by validation, `peerseq decode` and
`peerseq evaluate`.

Encoder-decoders: batched beam search; CTC models: greedy (papers 002 and 003 decode CTC
greedily). Scores: BLEU (sacrebleu, with its signature), WER or CER (jiwer). CTC references
are normalised the way the character tokenizer sees text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from peerseq.data.batching import Batch
from peerseq.data.tokenizers import CharTokenizer
from peerseq.decode.beam_search import beam_search
from peerseq.decode.ctc import ctc_greedy
from peerseq.engine.peer import Peer, is_seq2seq, unwrap
from peerseq.experiment import DecodeConfig
from peerseq.metrics.asr import cer, wer
from peerseq.metrics.bleu import bleu, chrf


@dataclass
class Decoded:
    ids: list[str]
    hyps: list[str]
    refs: list[str]


def max_len_a(peer: Peer, cfg: DecodeConfig) -> float:
    """Max output length per input position: cfg's, scaled for speech (10 ms frames)."""
    return cfg.max_len_a * (0.1 if peer.reads == "speech" else 1.0)


@torch.no_grad()
def decode_peer(
    peer: Peer,
    batches: Iterable[Batch],
    tokenizer,
    column: str,
    cfg: DecodeConfig,
    device: torch.device,
) -> Decoded:
    model = unwrap(peer.model)
    was_training = model.training
    model.eval()
    out = Decoded([], [], [])
    for batch in batches:
        batch = batch.to(device)
        src, src_lengths = peer.inputs(batch)
        if is_seq2seq(model):
            hyps = beam_search(
                model,
                src,
                src_lengths,
                beam=cfg.beam,
                max_len_a=max_len_a(peer, cfg),
                max_len_b=cfg.max_len_b,
                len_penalty=cfg.len_penalty,
            )
            seqs = [h[0].tokens for h in hyps]
        else:
            o = model(src, src_lengths)
            seqs = ctc_greedy(o.log_probs, o.lengths)
        refs = batch.texts[column]
        if isinstance(tokenizer, CharTokenizer):
            refs = [tokenizer.normalize(r) for r in refs]
        out.ids += batch.ids
        out.hyps += [tokenizer.decode(s) for s in seqs]
        out.refs += refs
    model.train(was_training)
    return out


def score(decoded: Decoded, metric: str) -> tuple[float, str]:
    """-> (score, description); BLEU's description is sacrebleu's signature."""
    if metric == "bleu":
        return bleu(decoded.refs, decoded.hyps)
    if metric == "chrf":
        return chrf(decoded.refs, decoded.hyps)
    if metric == "wer":
        return wer(decoded.refs, decoded.hyps), "wer (jiwer)"
    if metric == "cer":
        return cer(decoded.refs, decoded.hyps), "cer (jiwer)"
    raise ValueError(f"unknown metric {metric!r}")


def higher_is_better(metric: str) -> bool:
    return metric in ("bleu", "chrf")


def chance_score(refs: list[str], train_texts: list[str], metric: str, seed: int = 0) -> float:
    """What a system that ignores its input scores on refs: BLEU of randomly drawn training
    targets (fluent, unrelated), or WER/CER of the most frequent training transcript. A model
    that does not beat this has learnt nothing about its input."""
    import random
    from collections import Counter

    if metric in ("bleu", "chrf"):
        rng = random.Random(seed)
        return score(Decoded([], [rng.choice(train_texts) for _ in refs], refs), metric)[0]
    common = Counter(train_texts).most_common(1)[0][0]
    return score(Decoded([], [common] * len(refs), refs), metric)[0]
