"""Batched beam search and greedy search for encoder-decoders (see `peerseq.models.incremental`).

All sentences of a batch advance together: one `decode_step` per time step over all live rows
(sentences x beam). Search follows fairseq's `SequenceGenerator`:

- each step takes the 2*beam best (row, token) candidates of each sentence, so that `beam`
  non-EOS continuations remain even when up to `beam` candidates end in EOS;
- an EOS candidate ranked within the first `beam` is finalized, with score
  sum(log p) / len**len_penalty, len = generated tokens including EOS (fairseq's length penalty;
  1.0 = average log-prob per token, 0.0 = raw sum, > 1 favours longer outputs);
- a sentence stops once it has `beam` finalized hypotheses, or at its maximum length
  max_len = floor(max_len_a * src_len + max_len_b): at most max_len tokens, then EOS is forced;
- finished sentences leave the batch (their rows are dropped from memory and cache).

Callers put the model in eval mode; searching runs under `torch.inference_mode`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from peerseq.models.incremental import IncrementalDecoding
from peerseq.tokens import BOS, EOS, PAD

NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    """One output: token ids without BOS/EOS, and its (length-normalised) log-probability."""

    tokens: list[int]
    score: float


def max_lengths(src_lengths: torch.Tensor, max_len_a: float, max_len_b: int) -> torch.Tensor:
    """src_lengths [B] -> [B] maximum number of output tokens (EOS excluded) per sentence."""
    return (max_len_a * src_lengths.double() + max_len_b).floor().long().clamp(min=0)


def _mask_step(lp: torch.Tensor, step: int, forced: torch.Tensor, min_len: int) -> torch.Tensor:
    """lp [N, V] step log-probs -> a masked copy: never PAD/BOS, no EOS before min_len, nothing
    but EOS on rows where forced [N] is True (the row has reached its maximum length)."""
    lp = lp.float().clone()
    lp[:, PAD] = NEG_INF
    lp[:, BOS] = NEG_INF
    if step < min_len:  # min_len yields to max_len on forced rows
        lp[:, EOS] = lp[:, EOS].masked_fill(~forced, NEG_INF)
    if bool(forced.any()):
        not_eos = torch.ones(lp.size(1), dtype=torch.bool, device=lp.device)
        not_eos[EOS] = False
        lp = lp.masked_fill(forced[:, None] & not_eos[None, :], NEG_INF)
    return lp


@torch.inference_mode()
def greedy_search(
    model: IncrementalDecoding,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len_a: float = 1.2,
    max_len_b: int = 10,
    len_penalty: float = 1.0,
    min_len: int = 1,
) -> list[Hypothesis]:
    """Argmax decoding of a batch; same masking, lengths and scoring as `beam_search` (beam=1).

    src [B, S(, F)], src_lengths [B] -> B hypotheses.
    """
    memory = model.encode(src, src_lengths)
    dev = memory.x.device
    bsz = src_lengths.numel()
    limit = max_lengths(src_lengths, max_len_a, max_len_b).to(dev)
    alive = torch.arange(bsz, device=dev)  # original index of each row still decoding
    tokens = torch.full((bsz, 1), BOS, dtype=torch.long, device=dev)
    scores = torch.zeros(bsz, device=dev)
    cache = None
    out: list[Hypothesis | None] = [None] * bsz
    for step in range(int(limit.max()) + 1):
        lp, cache = model.decode_step(tokens, memory, cache)
        lp = _mask_step(lp, step, step >= limit, min_len)
        tok_lp, tok = lp.max(dim=-1)  # [N]
        scores = scores + tok_lp
        done = tok == EOS
        if bool(done.any()):
            norm = scores / (step + 1) ** len_penalty
            for i in done.nonzero().squeeze(1).tolist():
                out[int(alive[i])] = Hypothesis(tokens[i, 1:].tolist(), float(norm[i]))
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            alive, tok, scores, limit = alive[keep], tok[keep], scores[keep], limit[keep]
            tokens, memory = tokens[keep], memory.index_select(keep)
            cache = model.reorder_cache(cache, keep)
        tokens = torch.cat([tokens, tok[:, None]], dim=1)
    return out  # type: ignore[return-value]  # every row ends in EOS by max length


@torch.inference_mode()
def beam_search(
    model: IncrementalDecoding,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam: int = 5,
    max_len_a: float = 1.2,
    max_len_b: int = 10,
    len_penalty: float = 1.0,
    k: int = 1,
    min_len: int = 1,
) -> list[list[Hypothesis]]:
    """Beam search over a batch of sentences (module docstring has the rules).

    src [B, S(, F)], src_lengths [B] -> per sentence the k best hypotheses, best first.
    min_len: EOS is not allowed before this many tokens (fairseq's default 1: no empty output)
    unless the maximum length is smaller.
    """
    if k > beam:
        raise ValueError(f"k={k} must be <= beam={beam}")
    memory = model.encode(src, src_lengths)
    dev = memory.x.device
    bsz = src_lengths.numel()
    limit = max_lengths(src_lengths, max_len_a, max_len_b).to(dev)  # [n] for live sentences
    sent = torch.arange(bsz, device=dev)  # original index of each live sentence
    beam_ar = torch.arange(beam, device=dev)
    memory = memory.index_select(sent.repeat_interleave(beam))  # rows: sentence-major, beam-minor
    tokens = torch.full((bsz * beam, 1), BOS, dtype=torch.long, device=dev)
    # only beam 0 is live at the start, so the first step picks `beam` different tokens
    scores = torch.full((bsz, beam), NEG_INF, device=dev)
    scores[:, 0] = 0.0
    cache = None
    finalized: list[list[Hypothesis]] = [[] for _ in range(bsz)]

    for step in range(int(limit.max()) + 1):
        n = sent.numel()
        lp, cache = model.decode_step(tokens, memory, cache)
        at_limit = step >= limit  # [n]
        lp = _mask_step(lp, step, at_limit.repeat_interleave(beam), min_len)
        vocab = lp.size(1)
        cand = (scores[:, :, None] + lp.view(n, beam, vocab)).view(n, beam * vocab)
        cand_scores, cand_idx = cand.topk(2 * beam, dim=1)  # [n, 2*beam], best first
        cand_beam, cand_tok = cand_idx // vocab, cand_idx % vocab
        is_eos = cand_tok == EOS

        # finalize EOS candidates ranked in the top `beam` (fairseq), up to `beam` per sentence
        fin = is_eos[:, :beam] & (cand_scores[:, :beam] > NEG_INF)
        if bool(fin.any()):
            norm = (cand_scores[:, :beam] / (step + 1) ** len_penalty).tolist()
            origin = (torch.arange(n, device=dev)[:, None] * beam + cand_beam[:, :beam]).tolist()
            sent_l = sent.tolist()
            for i, j in fin.nonzero().tolist():
                hyps = finalized[sent_l[i]]
                if len(hyps) < beam:
                    hyps.append(Hypothesis(tokens[origin[i][j], 1:].tolist(), norm[i][j]))
        done = at_limit | torch.tensor(
            [len(finalized[s]) >= beam for s in sent.tolist()], device=dev
        )

        # continue with the first `beam` non-EOS candidates, keeping their score order
        rank = is_eos.long() * (2 * beam) + torch.arange(2 * beam, device=dev)
        pick = rank.topk(beam, dim=1, largest=False).indices  # [n, beam], ascending rank
        scores = cand_scores.gather(1, pick)
        new_tok = cand_tok.gather(1, pick)
        rows = torch.arange(n, device=dev)[:, None] * beam + cand_beam.gather(1, pick)
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            sent, limit, scores, new_tok, rows = (
                sent[keep],
                limit[keep],
                scores[keep],
                new_tok[keep],
                rows[keep],
            )
            memory = memory.index_select((keep[:, None] * beam + beam_ar).flatten())
        rows = rows.flatten()
        tokens = torch.cat([tokens[rows], new_tok.reshape(-1, 1)], dim=1)
        cache = model.reorder_cache(cache, rows)

    return [sorted(h, key=lambda x: -x.score)[:k] for h in finalized]
