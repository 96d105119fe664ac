"""What a run keeps besides its weights and optimisers, and its round trip through a checkpoint:
State (state.json), saved with the weights by rank 0 and read back on --resume."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from peerseq.config import saved_config_changes
from peerseq.errors import PeerseqError
from peerseq.rundir.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from peerseq.rundir.layout import RunDir
from peerseq.typed import from_dict


@dataclass
class State:
    """Everything besides weights and optimisers that a resumed run needs (state.json)."""

    step: int = 0
    epoch: int = 0
    micro: int = 0  # batches consumed in the current epoch (a resume skips as many)
    best: float | None = None
    best_step: int | None = None
    since_best: int = 0  # validations since the best one (early stopping's patience)
    done: bool = False
    history: list = field(default_factory=list)  # validation records
    skipped_steps: int = 0  # updates skipped for a non-finite loss or gradient norm
    skipped_streak: int = 0  # ... of them in a row, up to the last step
    metrics_lines: int | None = None  # metrics.jsonl lines written up to this checkpoint

    def __post_init__(self) -> None:
        for name in ("step", "epoch", "micro", "since_best", "skipped_steps", "skipped_streak"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.metrics_lines is not None and self.metrics_lines < 0:
            raise ValueError(f"metrics_lines: expected >= 0, got {self.metrics_lines}")


class SaveClock:
    """When a run writes an interim checkpoint: `minutes` of training after its last save
    (None: never). Asked every `every` steps only, and rank 0's answer is the one every rank
    takes (`agree`, a broadcast under torchrun), so that all of them save together."""

    def __init__(self, minutes: float | None, every: int, agree=lambda x: x):
        self.seconds = None if minutes is None else 60.0 * minutes
        self.every, self.agree = every, agree
        self.reset()

    def reset(self) -> None:
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.seconds is None or step % self.every:
            return False
        return bool(self.agree(time.monotonic() - self.last >= self.seconds))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_state(
    run_dir: Path,
    state: State,
    models: Mapping[str, nn.Module],
    optimisers: Mapping,
    schedulers: Mapping,
    keep_last: int | None,
    interim: bool = False,
) -> str | None:
    """Checkpoint the run at state.step (interim: between validations, save_checkpoint); ->
    None, or the error that stopped it (a full disk or a read-only folder: the newest complete
    checkpoint is then intact)."""
    try:
        save_checkpoint(
            run_dir,
            state.step,
            models,
            optimisers,
            schedulers,
            state.__dict__,
            keep_last=keep_last,
            interim=interim,
        )
    except OSError as e:
        last = latest_checkpoint(run_dir)
        return (
            f"{e.filename or run_dir}: {e.strerror or e} while saving step {state.step}; the "
            f"newest complete checkpoint, {last or 'none'}, is intact: free space and continue "
            "with --resume"
        )
    except PeerseqError as e:
        return str(e)
    return None


def load_state(
    run_dir: Path, models: Mapping[str, nn.Module], optimisers: Mapping, schedulers: Mapping
) -> State | None:
    """Restore models, optimisers and schedulers from the newest complete checkpoint; -> its
    State, or None when the run has no checkpoint."""
    ckpt = latest_checkpoint(run_dir, strict=True)
    if ckpt is None:
        return None
    extra = load_checkpoint(ckpt, models, optimisers, schedulers)
    if "bad" in extra:  # checkpoints written before the field had its present name
        extra["since_best"] = extra.pop("bad")
    extra.pop("interim", None)  # said twice by a few checkpoints: complete.json says it now
    source = str(ckpt / "state.json")
    state = from_dict(State, extra, source=source)
    if state.step != int(ckpt.name.split("-")[1]):
        raise PeerseqError(f"{source}: step {state.step}, expected {ckpt.name}'s step")
    return state


def non_finite(models: Mapping[str, nn.Module]) -> list[str]:
    """The names of the models with a NaN or infinite parameter."""
    return [
        name
        for name, model in models.items()
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    ]


# What a resumed run may change: where it ends, how it logs and checkpoints, what it runs on.
# Anything else would mix two experiments in one run directory.
RESUMABLE = {
    "out_dir",  # a run directory may be moved
    "train.max_epochs",
    "train.max_steps",
    "train.log_every",
    "train.keep_last",
    "train.save_every_minutes",
    "train.patience",
    "train.device",
    "train.num_threads",
    "train.collective_timeout",
    "train.max_bad_steps",
    "train.pseudo_labels_dir",  # a cache, its files named by the teacher's weights hash
}


def check_run_dir(exp, layout: RunDir, resume: bool) -> None:
    """May `exp` train into `layout`'s directory? One that holds checkpoints only with
    --resume, and only for the experiment they were trained by: its config.yaml may differ in
    RESUMABLE keys alone, else a finished run would be reused as if it had been trained with
    the new settings. Raises PeerseqError saying what to do."""
    steps = sorted(layout.checkpoints.glob("step-*"))
    if not steps:
        return
    if not resume:
        raise PeerseqError(
            f"out_dir {layout.root}: holds the checkpoints of an earlier run (newest "
            f"{steps[-1].name}); add --resume to continue it, or train into another out_dir "
            "(or delete this one) to start over"
        )
    saved = layout.config
    changed = saved.is_file() and [
        k for k in saved_config_changes(exp, saved) if k not in RESUMABLE
    ]
    if changed:
        raise PeerseqError(
            f"out_dir {layout.root}: its checkpoints were trained with another config ({saved} "
            f"differs in {', '.join(changed)}); --resume continues the same experiment. Train "
            "into another out_dir (or delete this one) to use the new settings"
        )
