"""Update rules: turn the objective into parameter updates.

    joint        one forward of every peer, one backward of the total, every trainable peer
                 steps (frozen peers run in eval mode without grad).
    alternating  paper 000 Algorithm 1: each trainable peer in turn minimises its part of the
                 objective with the other peers' outputs detached; after a peer steps, its
                 outputs are refreshed (without grad) before the next peer uses them. With
                 gradient accumulation the micro-batches of a step are kept until its last one,
                 then each peer's turn runs over all of them: a later peer learns from the
                 updated earlier peer on every micro-batch, as under DDP.
Both take the same explicit arguments and return the logged terms (floats). `step_now` is False
on the micro-batches of gradient accumulation that only accumulate.
"""

from __future__ import annotations

import torch

from peerseq.data.batching import Batch
from peerseq.engine.link import Link
from peerseq.engine.objective import objective
from peerseq.engine.optim import Optimisation
from peerseq.engine.peer import Peer
from peerseq.models.output import SeqOutput


def forward(peer: Peer, batch: Batch, grad: bool, autocast, outputs=None) -> SeqOutput:
    """One peer's forward, with or without grad, in the autocast context."""
    with torch.set_grad_enabled(grad), autocast():
        return peer.forward(batch, outputs)


def _floats(terms: dict) -> dict[str, float]:
    return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in terms.items()}


def frozen_outputs(
    peers: dict[str, Peer], batch: Batch, autocast, links: list[Link] = ()
) -> dict[str, SeqOutput]:
    """Outputs of the frozen peers, without grad -- except a teacher whose only use is a
    seqkd link whose hypotheses are cached in the batch: running it would be pure overhead."""
    cached = {lk.a for lk in links if lk.kind == "seqkd" and f"hyp:{lk.a}" in batch.tokens}
    used = {lk.b for lk in links} | {
        lk.a for lk in links if not (lk.kind == "seqkd" and lk.a in cached)
    }
    used |= {p.upstream for p in peers.values() if p.upstream}
    outputs: dict[str, SeqOutput] = {}
    for n, p in peers.items():
        if not p.trainable and n in used:
            outputs[n] = forward(p, batch, False, autocast, outputs)
    return outputs


def joint(
    peers: dict[str, Peer],
    links: list[Link],
    batch: Batch,
    step: int,
    opt: Optimisation,
    step_now: bool = True,
) -> dict[str, float]:
    outputs = frozen_outputs(peers, batch, opt.autocast, links)
    for name, peer in peers.items():
        if peer.trainable:
            outputs[name] = forward(peer, batch, True, opt.autocast, outputs)
    terms = objective(peers, links, outputs, batch, step)
    _backward(terms["total"], opt)
    if step_now:
        opt.step([n for n, p in peers.items() if p.trainable])
    return _floats(terms)


def alternating(
    peers: dict[str, Peer],
    links: list[Link],
    batch: Batch,
    step: int,
    opt: Optimisation,
    step_now: bool = True,
) -> dict[str, float]:
    """Algorithm 1. Every trainable peer is run once with grad at the start: a peer that has not
    stepped yet gives the same outputs as a fresh no-grad forward would, so only the peers that
    already stepped are re-run (without grad) -- one extra forward per peer but the last."""
    if opt.accum_steps > 1:
        opt.pending.append(batch)
        if not step_now:
            return {}
        batches, opt.pending = opt.pending, []
        return _alternating_accumulated(peers, links, batches, step, opt)
    outputs = frozen_outputs(peers, batch, opt.autocast, links)
    order = [n for n, p in peers.items() if p.trainable]
    live: dict[str, SeqOutput] = {}
    for n in order:
        live[n] = forward(peers[n], batch, True, opt.autocast, {**outputs, **live})
    current = {n: _detached(o) for n, o in live.items()}
    logged: dict[str, float] = {}
    for i, name in enumerate(order):
        view = {**outputs, **current, name: live[name]}
        terms = objective(peers, links, view, batch, step, for_peer=name)
        _backward(terms["total"], opt)
        logged |= {f"{name}:{k}" if k == "total" else k: v for k, v in _floats(terms).items()}
        if step_now:
            opt.step([name])
            if i < len(order) - 1:  # refresh: later peers learn from the updated one
                current[name] = forward(peers[name], batch, False, opt.autocast, current)
    logged["total"] = sum(v for k, v in logged.items() if k.endswith(":total"))
    return logged


def _alternating_accumulated(
    peers: dict[str, Peer], links: list[Link], batches: list[Batch], step: int, opt: Optimisation
) -> dict[str, float]:
    """Algorithm 1 over the micro-batches of one step: each peer in turn accumulates its
    gradient over all of them (other peers' outputs detached and current), then steps; its
    outputs are refreshed before the next peer's turn. Only one peer's graph is alive at a time.
    The logged terms are the means over the micro-batches."""
    ac = opt.autocast
    order = [n for n, p in peers.items() if p.trainable]
    frozen = [frozen_outputs(peers, b, ac, links) for b in batches]
    current: list[dict[str, SeqOutput]] = [{} for _ in batches]
    sums: dict[str, float] = {}
    for name in order:
        for m, b in enumerate(batches):
            view = dict(frozen[m])
            for other in order:  # in order: a peer reading "@upstream" comes after it
                if other == name:
                    view[name] = forward(peers[name], b, True, ac, view)
                    continue
                if other not in current[m]:  # no-grad; kept until that peer steps
                    current[m][other] = forward(peers[other], b, False, ac, view)
                view[other] = current[m][other]
            terms = objective(peers, links, view, b, step, for_peer=name)
            _backward(terms["total"], opt)
            for k, v in _floats(terms).items():
                key = f"{name}:{k}" if k == "total" else k
                sums[key] = sums.get(key, 0.0) + v / len(batches)
            current[m].pop(name, None)  # made stale by this peer's step: recomputed when needed
        opt.step([name])
    sums["total"] = sum(v for k, v in sums.items() if k.endswith(":total"))
    return sums


def _backward(total: torch.Tensor, opt: Optimisation) -> None:
    """Backward of one (micro-)batch; a turn with no term that reaches a trainable parameter
    (e.g. a peer with loss "none" and no link) has nothing to do. A non-finite loss is still
    back-propagated (under DDP every rank must join the gradient all-reduce) and marks the
    update for skipping."""
    if total.requires_grad:
        if not bool(torch.isfinite(total.detach())):
            opt.bad_loss = True
        (total / opt.accum_steps).backward()


def _detached(out: SeqOutput) -> SeqOutput:
    return SeqOutput(out.log_probs.detach(), out.lengths, out.mask, None)


UPDATE_RULES = {"joint": joint, "alternating": alternating}
