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

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from peerseq.data.batching import Batch
from peerseq.engine.link import Link
from peerseq.engine.objective import objective
from peerseq.engine.peer import Peer
from peerseq.models.output import SeqOutput


@dataclass
class Optimisation:
    """Per-peer optimisers and LR schedulers (a peer whose parameters all belong to another's
    optimiser, such as EM-Network's seq inside em, has none), gradient clipping, accumulation,
    the autocast context (bf16) forward passes run in, and the guard against non-finite steps.

    Non-finite steps: an update whose loss (any micro-batch of it) or gradient norm is NaN or
    infinite is skipped: gradients dropped, optimiser and LR scheduler untouched. `agree` makes
    every DDP rank take the same decision (any rank's bad loss skips the update everywhere); the
    names of the skipped peers collect in `skipped` until the loop takes them."""

    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    clip_norm: float | None = None
    accum_steps: int = 1
    autocast: Callable[[], object] = nullcontext
    agree: Callable[[bool], bool] = bool  # DDP: all-reduce "any rank bad"
    pending: list[Batch] = field(default_factory=list)  # alternating: this step's micro-batches
    bad_loss: bool = False  # a loss since the last update was not finite
    skipped: list[str] = field(default_factory=list)

    def step(self, names: list[str]) -> None:
        named = [(n, self.optimizers[n]) for n in names if n in self.optimizers]
        if not named:
            return
        finite = not self.bad_loss
        for _, opt in named:
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            if not grads:
                continue
            if self.clip_norm:  # clips in place; the norm it returns is the one before clipping
                params = [p for g in opt.param_groups for p in g["params"]]
                norm = torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
            else:
                norm = torch.nn.utils.get_total_norm(grads)
            finite = finite and bool(torch.isfinite(norm))
        bad = self.agree(not finite)
        self.bad_loss = False
        for name, opt in named:
            if bad:
                opt.zero_grad(set_to_none=True)
                self.skipped.append(name)
                continue
            opt.step()
            opt.zero_grad(set_to_none=True)
            if name in self.schedulers:  # per-step LR schedules (per-epoch ones: the loop)
                self.schedulers[name].step()

    def take_skipped(self) -> list[str]:
        """The peers whose update was skipped since the last call (and forget them)."""
        out, self.skipped = self.skipped, []
        return out


def _forward(peer: Peer, batch: Batch, grad: bool, autocast, outputs=None) -> SeqOutput:
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
            outputs[n] = _forward(p, batch, False, autocast, outputs)
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
            outputs[name] = _forward(peer, batch, True, opt.autocast, outputs)
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
        live[n] = _forward(peers[n], batch, True, opt.autocast, {**outputs, **live})
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
                current[name] = _forward(peers[name], batch, False, opt.autocast, current)
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
                    view[name] = _forward(peers[name], b, True, ac, view)
                    continue
                if other not in current[m]:  # no-grad; kept until that peer steps
                    current[m][other] = _forward(peers[other], b, False, ac, view)
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
