"""CTC decoding: best-path (greedy) and prefix beam search, both batched over utterances.

No language model: shallow fusion with an n-gram LM (pyctcdecode/kenlm) is not offered; it is not
installed here and is not needed by the papers peerseq reproduces.
"""

from __future__ import annotations

import torch

from peerseq.tokens import BLANK

NEG_INF = float("-inf")


def _best_path(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame-wise argmax [B, T], keep [B, T]: the frames where a token is emitted), on the CPU."""
    best = log_probs.argmax(dim=-1)  # [B, T]
    b, t = best.shape
    # previous frame's label, with -1 before the first frame so frame 0 is never a "repeat"
    prev = torch.cat([best.new_full((b, 1), -1), best[:, :-1]], dim=1)
    valid = torch.arange(t, device=best.device)[None, :] < lengths.to(best.device)[:, None]
    keep = (best != prev) & (best != blank) & valid  # [B, T]
    return best.cpu(), keep.cpu()


def ctc_greedy(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = BLANK
) -> list[list[int]]:
    """Best-path decoding: frame-wise argmax, merge repeats, drop blanks.

    log_probs: [B, T, V] (log-)posteriors; any monotone transform of them gives the same result.
    lengths:   [B] valid frames per utterance.
    Returns B token-id lists.
    """
    best, keep = _best_path(log_probs, lengths, blank)
    return [best[i][keep[i]].tolist() for i in range(best.size(0))]


def ctc_greedy_frames(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = BLANK
) -> list[list[tuple[int, int]]]:
    """ctc_greedy's tokens with the output frame where each begins: B lists of (token, frame)
    (a token's time is its frame times the model's output frame period)."""
    best, keep = _best_path(log_probs, lengths, blank)
    out = []
    for i in range(best.size(0)):
        frames = keep[i].nonzero().flatten()
        out.append(list(zip(best[i][frames].tolist(), frames.tolist(), strict=True)))
    return out


def ctc_prefix_beam_search(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    beam: int = 10,
    k: int = 1,
    blank: int = BLANK,
    token_beam: int | None = None,
) -> list[list[tuple[list[int], float]]]:
    """CTC prefix beam search (Graves 2012; Hannun et al. 2014) without a language model.

    Each hypothesis is a label prefix with two log-probabilities: of all alignments of the frames
    seen so far that give the prefix and end in blank (pb) or in its last label (pnb). The score of
    a prefix is logaddexp(pb, pnb), i.e. alignments are summed, not maximised.

    log_probs:  [B, T, V] log-posteriors (log-softmax over V, blank at `blank`).
    lengths:    [B] valid frames per utterance; frames beyond are ignored.
    beam:       prefixes kept per utterance after each frame.
    k:          hypotheses returned per utterance (k <= beam).
    token_beam: per frame, only the `token_beam` most probable non-blank labels may extend a prefix
                (default: `beam`, as in WeNet); pass V - 1 to disable this pruning.
    Returns per utterance up to k (tokens, log-probability) pairs, best first.

    Vectorisation: the loop is over frames only. Each frame is one set of tensor ops over
    [B, beam, token_beam] candidates for all utterances at once: stay-candidates (blank or repeat
    of the last label), extensions, the merge of an extension that equals a prefix already in the
    beam (detected by comparing prefix ids with parent ids, a [B, beam, beam] equality), and one
    top-k per utterance. Prefixes are nodes of a tree stored in flat parent/label tables, so no
    Python lists are touched per frame; tokens are read back once at the end. Utterances that have
    run out of frames keep their state unchanged.

    Note: with beam=1 this is *not* best-path decoding in general (stay-candidates sum the blank
    and repeat paths); it agrees with `ctc_greedy` when each frame's argmax has most of the mass.
    """
    if k > beam:
        raise ValueError(f"k={k} must be <= beam={beam}")
    lp_all = log_probs.detach().float()
    bsz, t_max, vocab = lp_all.shape
    c = min(token_beam or beam, vocab - 1)
    dev = lp_all.device
    lengths = lengths.to(dev)

    # per-frame candidate labels, blank excluded: [B, T, C]
    no_blank = lp_all.clone()
    no_blank[..., blank] = NEG_INF
    tok_lp_all, tok_all = no_blank.topk(c, dim=-1)

    # prefix tree: node ids 0..B-1 are the empty prefixes; each frame may add B*beam nodes
    n_nodes = bsz + t_max * bsz * beam
    node_parent = torch.full((n_nodes,), -1, dtype=torch.long, device=dev)
    node_label = torch.full((n_nodes,), -1, dtype=torch.long, device=dev)
    next_id = bsz

    # beam state, [B, beam]; slot 0 holds the empty prefix, other slots are empty (invalid)
    pb = torch.full((bsz, beam), NEG_INF, device=dev)
    pb[:, 0] = 0.0
    pnb = torch.full((bsz, beam), NEG_INF, device=dev)
    node = torch.full((bsz, beam), -1, dtype=torch.long, device=dev)
    node[:, 0] = torch.arange(bsz, device=dev)
    parent = torch.full((bsz, beam), -1, dtype=torch.long, device=dev)
    # last label of each prefix; blank for the empty prefix (its pnb is -inf, so never used)
    last = torch.full((bsz, beam), blank, dtype=torch.long, device=dev)
    rows = torch.arange(bsz, device=dev)[:, None]

    for t in range(t_max):
        active = (t < lengths)[:, None]  # [B, 1]
        lp = lp_all[:, t]  # [B, V]
        tok_lp, tok = tok_lp_all[:, t], tok_all[:, t]  # [B, C]
        total = torch.logaddexp(pb, pnb)  # [B, beam] log P(prefix)
        valid = total > NEG_INF

        # prefix unchanged: blank after anything, or the last label repeated (merged)
        stay_b = total + lp[:, blank, None]
        stay_nb = pnb + lp.gather(1, last)
        # prefix + label; a repeat of the last label only extends after a blank
        same = tok[:, None, :] == last[:, :, None]  # [B, beam, C]
        ext = torch.where(same, pb[:, :, None], total[:, :, None]) + tok_lp[:, None, :]
        ext = ext.reshape(bsz, beam * c)

        # an extension (i, label) equal to prefix j already in the beam is merged into j's pnb
        eq = (node[:, :, None] == parent[:, None, :]) & valid[:, :, None] & valid[:, None, :]
        has_parent = eq.any(dim=1)  # [B, beam] (j)
        parent_slot = eq.float().argmax(dim=1)  # [B, beam] slot i of j's parent
        # position of j's last label among this frame's C candidates (same[b, j, :] is its match)
        label_pos = same.float().argmax(dim=2)  # [B, beam]
        merge = has_parent & same.any(dim=2)
        # non-merging slots point at a dummy column so the scatter below never collides
        flat = torch.where(merge, parent_slot * c + label_pos, beam * c)
        ext = torch.cat([ext, ext.new_full((bsz, 1), NEG_INF)], dim=1)
        stay_nb = torch.where(merge, torch.logaddexp(stay_nb, ext.gather(1, flat)), stay_nb)
        ext.scatter_(1, flat, NEG_INF)
        ext = ext[:, :-1]

        cand = torch.cat([torch.logaddexp(stay_b, stay_nb), ext], dim=1)  # [B, beam + beam*C]
        _, sel = cand.topk(beam, dim=1)  # [B, beam]
        is_ext = sel >= beam
        src = torch.where(is_ext, (sel - beam) // c, sel)  # slot the candidate came from
        lab = tok.gather(1, ((sel - beam) % c).clamp(min=0))
        fresh = next_id + torch.arange(bsz * beam, device=dev).view(bsz, beam)
        next_id += bsz * beam

        new_pb = torch.where(is_ext, NEG_INF, stay_b.gather(1, sel.clamp(max=beam - 1)))
        ext_nb = ext.gather(1, (sel - beam).clamp(min=0))
        new_pnb = torch.where(is_ext, ext_nb, stay_nb.gather(1, sel.clamp(max=beam - 1)))
        src_node = node[rows, src]
        new_node = torch.where(is_ext, fresh, src_node)
        new_parent = torch.where(is_ext, src_node, parent[rows, src])
        new_last = torch.where(is_ext, lab, last[rows, src])
        node_parent[fresh] = src_node
        node_label[fresh] = lab

        pb = torch.where(active, new_pb, pb)
        pnb = torch.where(active, new_pnb, pnb)
        node = torch.where(active, new_node, node)
        parent = torch.where(active, new_parent, parent)
        last = torch.where(active, new_last, last)

    score = torch.logaddexp(pb, pnb)
    score, order = score.sort(dim=1, descending=True)
    node = node.gather(1, order)
    parents, labels = node_parent.tolist(), node_label.tolist()
    out: list[list[tuple[list[int], float]]] = []
    for b in range(bsz):
        hyps = []
        for j in range(k):
            s = float(score[b, j])
            if s == NEG_INF:
                break
            n, toks = int(node[b, j]), []
            while n >= bsz:  # walk up to the empty prefix (a root id < B)
                toks.append(labels[n])
                n = parents[n]
            hyps.append((toks[::-1], s))
        out.append(hyps)
    return out
