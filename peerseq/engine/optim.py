"""Optimisation of the peers: optimisers and LR schedules built from OptimConfig, and the
Optimisation that steps them (gradient clipping, accumulation, autocast, non-finite skips)."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from peerseq.data.batching import Batch
from peerseq.engine.peer import Peer
from peerseq.typed import bounded

PER_EPOCH = ("epoch_decay",)  # LR schedules stepped at the end of an epoch, not every update


@dataclass
class OptimConfig:
    """An optimiser and its LR schedule (a run's `optim:`, or a peer's own `optim:`)."""

    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(0.0, ge=0)
    betas: list[float] = bounded(default_factory=lambda: [0.9, 0.98], ge=0, lt=1)
    momentum: float = bounded(0.9, ge=0, lt=1)  # sgd
    schedule: Literal["inverse_sqrt", "cosine", "epoch_decay", "constant"] = "inverse_sqrt"
    warmup: int = bounded(500, ge=0)  # steps of linear warm-up (inverse_sqrt, cosine)
    decay: float = bounded(0.95, gt=0, le=1)  # per epoch (epoch_decay; paper 003)
    # cosine: the update at which the LR reaches zero (a fixed budget's train.max_steps)
    total: int | None = bounded(None, gt=0)

    def __post_init__(self) -> None:
        if len(self.betas) != 2:
            raise ValueError(f"betas: expected 2 values, got {len(self.betas)}")
        if self.schedule == "cosine" and (self.total is None or self.total <= self.warmup):
            raise ValueError(
                f"schedule cosine: total (the update at which the LR reaches zero) must be "
                f"greater than warmup ({self.warmup}), got {self.total}"
            )


@dataclass
class Optimisation:
    """Per-peer optimisers and LR schedulers (a peer whose parameters all belong to another's
    optimiser, such as EM-Network's seq inside em, has none), gradient clipping, accumulation,
    the autocast context (bf16) forward passes run in, and the guard against non-finite steps.

    Non-finite steps: an update whose loss (any micro-batch of it) or gradient norm is NaN or
    infinite is skipped: gradients dropped, optimiser and LR scheduler untouched. `agree` makes
    every DDP rank take the same decision (any rank's bad loss skips the update everywhere); the
    names of the skipped peers collect in `skipped` until the loop takes them."""

    optimisers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    clip_norm: float | None = None
    accum_steps: int = 1
    autocast: Callable[[], object] = nullcontext
    agree: Callable[[bool], bool] = bool  # DDP: all-reduce "any rank bad"
    pending: list[Batch] = field(default_factory=list)  # alternating: this step's micro-batches
    bad_loss: bool = False  # a loss since the last update was not finite
    skipped: list[str] = field(default_factory=list)
    per_epoch: frozenset[str] = frozenset()  # peers whose scheduler steps per epoch, not update

    def epoch_end(self) -> None:
        """Per-epoch LR decay (paper 003: x0.95 after every epoch)."""
        for name in self.per_epoch:
            self.schedulers[name].step()

    def step(self, names: list[str]) -> None:
        named = [(n, self.optimisers[n]) for n in names if n in self.optimisers]
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
            if name in self.schedulers and name not in self.per_epoch:
                self.schedulers[name].step()  # per-update LR schedules (per-epoch: epoch_end)

    def take_skipped(self) -> list[str]:
        """The peers whose update was skipped since the last call (and forget them)."""
        out, self.skipped = self.skipped, []
        return out


@dataclass
class LRLambda:
    """LR multiplier as a pure function of the scheduler's step count (picklable, unlike a
    lambda, so scheduler state round-trips through checkpoints)."""

    kind: str
    warmup: int
    total: int | None = None  # cosine: the update at which the multiplier reaches zero

    def __call__(self, step: int) -> float:
        step = step + 1
        w = max(1, self.warmup)
        if self.kind == "inverse_sqrt":  # fairseq's: linear warm-up, then 1/sqrt(step)
            return step / w if step < w else math.sqrt(w / step)
        if self.kind == "cosine":
            # linear warm-up, then half a cosine to zero at `total` (fairseq's and NeMo's
            # cosine): a fixed budget ends on an annealed model rather than mid-flight. Update
            # `total` itself gets LR 0, a no-op kept so that the curve ends exactly at zero
            if step < w:
                return step / w
            done = min(1.0, (step - w) / max(1, self.total - w))
            return 0.5 * (1.0 + math.cos(math.pi * done))
        return 1.0


def fusable(params: list[nn.Parameter]) -> bool | None:
    """True when torch has a fused optimiser kernel for every parameter (floating point, on a
    CPU or a CUDA device); None lets torch choose otherwise."""
    ok = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if ok and params else None


def build_optimiser(
    params: list[nn.Parameter], cfg: OptimConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW or SGD over params, and its LR scheduler: stepped every update (inverse_sqrt,
    cosine, constant) or every epoch (epoch_decay; see PER_EPOCH). The update is torch's fused
    kernel where the parameters' device has one: on a CPU, AdamW's per-parameter loop cost 24 ms
    of a 600 ms step of the small ST Transformer, the fused kernel 5 ms (bench/train_step.py)."""
    fused = fusable(params)
    if cfg.name == "sgd":
        opt = torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    else:
        opt = torch.optim.AdamW(
            params,
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    if cfg.schedule in PER_EPOCH:
        return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(
        opt, LRLambda(cfg.schedule, cfg.warmup, cfg.total)
    )


def build_optimisation(
    peers: dict[str, Peer],
    configs: dict[str, OptimConfig],
    clip_norm: float | None = None,
    accum_steps: int = 1,
    autocast: Callable[[], object] = nullcontext,
    agree: Callable[[bool], bool] = bool,
) -> Optimisation:
    """One optimiser and scheduler per trainable peer (configs: each peer's OptimConfig). A
    parameter shared with an earlier peer belongs to that peer's optimiser only; a peer left
    with no parameters of its own gets none. Frozen peers are put in eval mode without grad."""
    seen: set[int] = set()
    optimisers, schedulers = {}, {}
    for name, peer in peers.items():
        if not peer.trainable:
            peer.model.eval().requires_grad_(False)
            continue
        params = [p for p in peer.model.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            optimisers[name], schedulers[name] = build_optimiser(params, configs[name])
    per_epoch = frozenset(n for n in schedulers if configs[n].schedule in PER_EPOCH)
    return Optimisation(
        optimisers, schedulers, clip_norm, accum_steps, autocast, agree, per_epoch=per_epoch
    )
