"""What a training run says on its console (and in RUN/train.log) beyond the loss lines: a
start-up summary, the learning rates for the log, why the run ended, and infeasible CTC rows
once an epoch rather than once a step."""

from __future__ import annotations

import torch

from peerseq.distributed import machine, precision
from peerseq.metrics.cost import count_parameters
from peerseq.rundir.provenance import initial_weights


def environment(trainer) -> dict[str, str | int]:
    """Where and how a run trains, for its `start` record in metrics.jsonl (one a (re)start):
    device, precision (bf16 where requested and native, else fp32), the processor, threads,
    processes, torch's version."""
    return {
        "device": str(trainer.device),
        "precision": precision(trainer.device, trainer.exp.train.bf16),
        "machine": machine(trainer.device),
        "threads": torch.get_num_threads(),
        "processes": trainer.dist.world_size,
        "torch": torch.__version__,
    }


def start_record(trainer) -> dict:
    """The `start` record's values: environment(), and under "init" the weights each peer
    started from (rundir/provenance.py), where a peer starts from another run."""
    init = initial_weights(trainer.exp.peers)
    return environment(trainer) | ({"init": init} if init else {})


def startup_summary(trainer) -> list[str]:
    """Device, precision and threads; each peer's parameters, role and whether it trains; the
    data sizes and updates an epoch (the training sampler's epoch 0, counted on its metadata). A
    run without train.max_steps gets its log's ETA from those: updates an epoch x max_epochs."""
    exp, data = trainer.exp, trainer.data
    env = environment(trainer)
    lines = [
        f"peerseq train {exp.out_dir}: device {env['device']} ({env['machine']}), "
        f"{env['precision']}, {env['threads']} threads, {env['processes']} process(es), "
        f"seed {exp.train.seed}"
    ]
    for name, peer in trainer.peers.items():
        cfg = exp.peers[name]
        state = "trains" if peer.trainable else "frozen"
        lines.append(
            f"  peer {name}: {cfg.model.preset} ({cfg.model.size}), "
            f"{count_parameters(peer.model):,} parameters, reads {cfg.reads}, predicts "
            f"{cfg.predicts} ({cfg.loss}), {state}"
        )
    sampler = data.sampler(exp.data.train_split, True)
    sampler.set_epoch(0)
    batches = utts = 0
    # a Shar stream counts on its manifests alone, without the collective of its epochs
    for items in getattr(sampler, "metadata", lambda: sampler)():
        batches += 1
        utts += len(items)
    dev = sum(len(items) for items in data.sampler(exp.data.dev_split, False))
    per_update = exp.train.accum_steps
    if trainer.log is not None and not trainer.log.total:
        trainer.log.total = batches // per_update * exp.train.max_epochs
    lines.append(
        f"  data {data.dir.name}: {utts} training items in {batches} batches "
        f"({batches // per_update} updates an epoch, at most {exp.train.max_epochs} epochs"
        + (f", {exp.train.max_steps} updates" if exp.train.max_steps else "")
        + f"), {dev} dev items"
    )
    return lines


def learning_rates(optimisers: dict) -> dict[str, float]:
    """{"lr:PEER": the learning rate of its first parameter group} for the log."""
    return {f"lr:{name}": opt.param_groups[0]["lr"] for name, opt in optimisers.items()}


def infeasible_line(epoch: int, tally) -> str | None:
    """One line for the epoch's infeasible CTC rows (peerseq.losses.tally_infeasible), or None:
    how many, the first few utterances with what they have and need, and the largest
    subsampling of the input that would fit every one of them."""
    short = list(tally.short)
    tally.short.clear()
    bad, rows, calls = tally.take()
    if not bad:
        return None
    named = sorted(set(short))
    shown = ", ".join(f"{u} ({have} frames for {need})" for u, have, need, _ in named[:5])
    more = f" and {len(named) - 5} more" if len(named) > 5 else ""
    fit = min((src // need for _, _, need, src in named if need), default=0)
    advice = (
        f"a front-end subsampling at most {fit}x would fit them all"
        if fit >= 1
        else "no subsampling fits them: their targets are longer than their input"
    )
    batches = f"{calls} batch" + "es" * (calls != 1)
    return (
        f"epoch {epoch}: CTC left {bad} of {rows} rows out of the loss in {batches}, "
        f"targets that need more frames than the subsampled input has: {shown}{more}. "
        f"Filter such utterances (data.min_seconds), or {advice}"
    )


def early_stop_line(peer: str, metric: str, patience: int, state) -> str:
    return (
        f"early stopping: no better dev {peer}/{metric} in {patience} validations "
        f"(train.patience); best {state.best:.3f} at step {state.best_step}, kept in best/"
    )
