"""Checkpoints of a set of peers (name -> model, optimiser, scheduler) that survive a crash and
never unpickle arbitrary objects.

Layout of one checkpoint, `run_dir/checkpoints/step-{step:08d}/`:

    model.{peer}.safetensors   weights (safetensors: no pickle at all)
    optim.{peer}.pt            {"optimizer": ..., "scheduler": ...}, read with weights_only=True
    rng.pt                     torch/CUDA/numpy/python RNG states as tensors and plain values
    state.json                 the caller's extra_state (epoch, best metric, sampler state, ...)

Atomicity: everything is written into `.step-{step:08d}.partial-<random>` next to the final
directory, fsynced, `complete.json` last (every file's name and size: the completion marker),
then renamed in one `os.rename`; the `latest` pointer is replaced with `os.replace`; old
checkpoints are first renamed to `.step-*.deleting-*` and only then removed. A crash at any point
leaves the previous set of checkpoints or the new one, plus leftovers whose names start with "."
(never read; `clean_leftovers` removes them). Resuming takes the newest *complete* `step-*`
directory (its marker present and every file it lists of the listed size), never trusting the
`latest` pointer, which a crash between the rename and its update leaves one step behind; the
pointer is kept for people and scripts (its mtime is the time of the last save). One process
writes a run directory at a time (rank 0 under DDP, under the run's lock).

Interim checkpoints (`interim=True`, `complete.json` says so) are the ones a run writes between
two validations so that a crash loses minutes, not an interval (`train.save_every_minutes`).
They resume like any other, but `keep_last` and `average --last` count only the regular ones, and
any newer checkpoint removes them: at most one exists, and only as the newest.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from peerseq.errors import PeerseqError
from peerseq.files import atomic_dir, fsync_dir, remove, write_text
from peerseq.rundir.layout import WEIGHTS, RunDir, peers_in, weights_file
from peerseq.rundir.state_files import (
    check_weights_only,
    from_json,
    to_json,
    torch_load,
    torch_save,
)
from peerseq.rundir.weights import average_checkpoints, load_checked, save_weights

_STEP_DIR = re.compile(r"^step-(\d+)$")
_ASIDE = re.compile(r"^\.(step-\d+)\.replaced-[0-9a-f]+$")  # see save_checkpoint
MARKER = "complete.json"


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    models: Mapping[str, nn.Module],
    optimisers: Mapping[str, Optimizer],
    schedulers: Mapping[str, LRScheduler],
    extra_state: Mapping[str, Any],
    rng: bool = True,
    keep_last: int | None = None,
    interim: bool = False,
) -> Path:
    """Write the checkpoint for `step` atomically and return its directory.

    Peers without an optimiser (a frozen teacher) or without a scheduler are allowed; every
    optimiser/scheduler name must be a model name. `keep_last` (None: keep all) removes the
    oldest complete checkpoints beyond that number, never the one just written. `interim`: a
    checkpoint between two regular ones (module docstring), not counted by `keep_last`.
    """
    _check_peers(models, optimisers, schedulers)
    if keep_last is not None and keep_last < 1:
        raise PeerseqError(f"keep_last must be >= 1 or None, got {keep_last}")
    root = RunDir(run_dir).checkpoints
    root.mkdir(parents=True, exist_ok=True)
    final, aside = root / f"step-{step:08d}", None
    # an interim checkpoint of this very step (an epoch's last batch) gives way to a regular one
    replaces = final.exists() and not interim and _is_complete(final) and is_interim(final)
    if final.exists() and not replaces:
        raise PeerseqError(f"{final}: a checkpoint for step {step} already exists")
    state_json = json.dumps(to_json(extra_state, "extra_state"), indent=1)

    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.partial-", dir=root))
    try:
        for peer, model in models.items():
            save_weights(weights_file(tmp, peer), model.state_dict())
        for peer, opt in optimisers.items():
            sched = schedulers.get(peer)
            obj = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
            }
            check_weights_only(obj, f"optim.{peer}.pt")
            torch_save(obj, tmp / f"optim.{peer}.pt")
        if rng:
            torch_save(_get_rng_state(), tmp / "rng.pt")
        write_text(tmp / "state.json", state_json)
        # the marker last: a directory without it, or whose files differ from it, is incomplete
        sizes = {f.name: f.stat().st_size for f in sorted(tmp.iterdir()) if f.is_file()}
        marker = {"step": step, "files": sizes} | ({"interim": True} if interim else {})
        write_text(tmp / MARKER, json.dumps(marker, indent=1))
        fsync_dir(tmp)
        # the interim one is set aside, not deleted, until the new one is in place: a crash in
        # between leaves it to clean_leftovers, which puts it back
        if replaces:
            aside = root / f".{final.name}.replaced-{os.urandom(4).hex()}"
            os.rename(final, aside)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and aside.exists() and not final.exists():
            os.rename(aside, final)  # the new one failed: the interim one stays the newest
        raise
    fsync_dir(root)
    if aside is not None:
        remove(aside)
    write_text(RunDir(run_dir).latest_pointer, final.name + "\n", atomic=True)
    _prune(root, final, step, keep_last, interim)
    return final


def list_checkpoints(run_dir: str | os.PathLike, interim: bool = True) -> list[Path]:
    """Complete checkpoint directories of a run, oldest step first (`.partial` dirs ignored);
    interim=False leaves out the interim checkpoint, if any (module docstring)."""
    root = RunDir(run_dir).checkpoints
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), d)
        for d in root.iterdir()
        if (m := _STEP_DIR.match(d.name)) and _is_complete(d) and (interim or not is_interim(d))
    ]
    return [d for _, d in sorted(found)]


def is_interim(directory: Path) -> bool:
    """Whether a complete checkpoint was written as an interim one (its marker says so)."""
    try:
        return bool(json.loads((directory / MARKER).read_text(encoding="utf-8")).get("interim"))
    except (OSError, ValueError, AttributeError):
        return False  # no marker: written before interim checkpoints existed


def latest_checkpoint(run_dir: str | os.PathLike, strict: bool = False) -> Path | None:
    """The newest complete checkpoint of a run, else None. The `latest` pointer is not read: a
    crash between a new directory's rename and the pointer's update leaves it one step behind.

    strict (resuming): a `step-*` directory newer than that one which is not complete cannot
    come from a crash (directories get their final name in one rename); it was edited, copied
    or damaged, and raises PeerseqError saying how, rather than being passed over."""
    found = list_checkpoints(run_dir)
    if strict:
        root, newest = RunDir(run_dir).checkpoints, _step_of(found[-1]) if found else -1
        for d in sorted(root.glob("step-*")) if root.is_dir() else []:
            why = _why_incomplete(d) if _STEP_DIR.match(d.name) else None
            if why and _step_of(d) > newest:
                raise PeerseqError(
                    f"{d}: not a complete checkpoint ({why}); it was edited or damaged after it "
                    "was written: move it out of checkpoints/ to resume from the one before"
                )
    return found[-1] if found else None


def _step_of(directory: Path) -> int:
    return int(_STEP_DIR.match(directory.name).group(1))


# what an interrupted atomic write leaves at the top of a run directory: best/ and averaged/
# written beside (atomic_dir), metrics.jsonl, config.yaml, best.json rewritten (atomic_write_text)
_RUN_LEFTOVER = re.compile(r"^\.(best|averaged)\.(partial|old)-|^\.(metrics\.jsonl|config\.yaml)\.")


def clean_leftovers(run_dir: str | os.PathLike) -> list[str]:
    """Remove what crashed saves and prunes left in `checkpoints/` (partial and half-deleted
    directories, temporary files) and interrupted atomic writes at the top of the run
    directory; -> their names. Only for the process that holds the run's lock: another writer's
    save in progress looks the same."""
    run_dir, gone = Path(run_dir), []
    root = RunDir(run_dir).checkpoints
    for d in sorted(root.glob(".step-*.replaced-*")) if root.is_dir() else []:
        if not (m := _ASIDE.match(d.name)):
            continue  # e.g. one half-deleted after its replacement: removed below
        final = root / m.group(1)  # an interim checkpoint set aside
        if final.exists():
            remove(d)  # its replacement is in place
            gone.append(d.name)
        else:  # the save that was replacing it crashed: it is the newest checkpoint again
            os.rename(d, final)
    for d in sorted(root.glob(".*")) if root.is_dir() else []:
        if re.search(r"\.(partial|deleting)-|\.tmp$", d.name):
            remove(d)
            gone.append(d.name)
    for d in sorted(run_dir.glob(".*")) if run_dir.is_dir() else []:
        if _RUN_LEFTOVER.search(d.name):
            remove(d)
            gone.append(d.name)
    return gone


def load_checkpoint(
    path: str | os.PathLike,
    models: Mapping[str, nn.Module],
    optimisers: Mapping[str, Optimizer] | None = None,
    schedulers: Mapping[str, LRScheduler] | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore the given peers from checkpoint directory `path` and return its extra_state.

    Every file is read and checked before any object is modified, so a bad checkpoint raises
    PeerseqError (naming the file) and leaves models and optimisers as they were. Peers in the
    checkpoint but not passed in are ignored (e.g. load only the student for decoding).
    """
    path = Path(path)
    optimisers, schedulers = optimisers or {}, schedulers or {}
    _check_peers(models, optimisers, schedulers)
    if not path.is_dir():
        raise PeerseqError(f"{path}: no such checkpoint directory")
    weights = {p: load_checked(weights_file(path, p), m) for p, m in models.items()}
    optim_states = {p: torch_load(path / f"optim.{p}.pt") for p in optimisers}
    for peer, sched in schedulers.items():
        if sched is not None and optim_states[peer].get("scheduler") is None:
            raise PeerseqError(f"{path / f'optim.{peer}.pt'}: holds no scheduler state")
    rng_state = torch_load(path / "rng.pt") if restore_rng else None
    state_file = path / "state.json"
    try:
        extra_state = from_json(json.loads(state_file.read_text()))
    except (OSError, ValueError) as e:
        raise PeerseqError(f"{state_file}: missing or not valid JSON ({e})") from e

    for peer, model in models.items():
        model.load_state_dict(weights[peer], strict=True)
    for peer, opt in optimisers.items():
        file = path / f"optim.{peer}.pt"
        try:
            opt.load_state_dict(optim_states[peer]["optimizer"])
            if schedulers.get(peer) is not None:
                schedulers[peer].load_state_dict(optim_states[peer]["scheduler"])
        except (KeyError, ValueError, TypeError) as e:
            raise PeerseqError(f"{file}: does not fit optimiser/scheduler of {peer!r} ({e})") from e
    if rng_state is not None:
        _set_rng_state(rng_state, path / "rng.pt")
    return extra_state


def _get_rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)  # {"bit_generator", "state": {key, pos}, ...}
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def _set_rng_state(state: dict[str, Any], file: Path) -> None:
    try:
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": n["bit_generator"],
                "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                "has_gauss": n["has_gauss"],
                "gauss": n["gauss"],
            }
        )
        p = state["python"]
        random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss_next"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise PeerseqError(f"{file}: not a valid RNG state ({e})") from e
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            warnings.warn(
                f"{file}: saved {len(cuda)} CUDA RNG states, "
                f"{torch.cuda.device_count()} devices present; restoring the common ones",
                stacklevel=2,
            )
        for i, s in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


def _check_peers(models, optimisers, schedulers) -> None:
    for kind, names in (("optimiser", optimisers), ("scheduler", schedulers)):
        extra = sorted(set(names) - set(models))
        if extra:
            raise PeerseqError(f"{kind} given for unknown peer(s) {extra}; peers: {sorted(models)}")
    no_opt = sorted(p for p, s in schedulers.items() if s is not None and p not in optimisers)
    if no_opt:
        raise PeerseqError(f"scheduler given without optimiser for peer(s) {no_opt}")
    for name in models:
        if not name or "/" in name or name.startswith("."):
            raise PeerseqError(f"peer name {name!r} cannot be used in a file name")


def _is_complete(directory: Path) -> bool:
    return directory.is_dir() and _why_incomplete(directory) is None


def _why_incomplete(directory: Path) -> str | None:
    """None if the marker is there and every file it lists has the size it lists, else what
    differs. A checkpoint written before the marker existed counts when its state.json (written
    last then) and weights are there."""
    marker = directory / MARKER
    if not marker.is_file():
        if (directory / "state.json").is_file() and any(directory.glob("model.*.safetensors")):
            return None
        return f"no {MARKER}"
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict) or not files:
            return f"{MARKER} lists no files"
        for name, size in files.items():
            f = directory / name
            if not f.is_file():
                return f"{name} is missing"
            if f.stat().st_size != size:
                return f"{name} has {f.stat().st_size} bytes, {MARKER} says {size}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{MARKER} unreadable ({e})"
    return None


def _prune(root: Path, just_written: Path, step: int, keep_last: int | None, interim: bool) -> None:
    # leftovers of crashed saves/deletes at older steps; a newer one could be another writer's
    for d in root.glob(".*"):
        m = re.match(r"^\.step-(\d+)\.(partial|deleting)-", d.name)
        if (m and (int(m.group(1)) < step or m.group(2) == "deleting")) or (
            d.name.startswith(".latest.") and d.name.endswith(".tmp")
        ):
            remove(d)
    for d in list_checkpoints(root.parent):  # superseded by the one just written
        if d != just_written and is_interim(d):
            remove(d)
    if keep_last is None:
        return
    done = [d for d in list_checkpoints(root.parent, interim=False) if d != just_written]
    for d in done[: max(0, len(done) - (keep_last - (not interim)))]:
        remove(d)


def weights_folder(run_dir: str | os.PathLike, which: str = "best") -> Path:
    """The folder of weights to use: best (early stopping's; the latest checkpoint when the
    run has no best/), last (the latest checkpoint) or averaged (`peerseq average`)."""
    if which not in WEIGHTS:
        raise PeerseqError(f"weights: expected one of {', '.join(WEIGHTS)}, got {which!r}")
    run = RunDir(run_dir)
    if which == "best" and not run.best.is_dir():
        which = "last"  # no early stopping configured: the final weights
    if which == "last":
        ckpt = latest_checkpoint(run.root)
        if ckpt is None:
            raise PeerseqError(f"{run.root}: no checkpoint yet")
        return ckpt
    folder = run.best if which == "best" else run.averaged
    if not folder.is_dir():
        raise PeerseqError(f"{run.root}: no '{which}' weights (have: best, last, averaged?)")
    return folder


def peer_weights_file(spec: str, what: str = "init_from") -> Path:
    """'RUN_DIR:peer' -> the file of that peer's weights: the run's early-stopping best when it
    has one (as `peerseq decode` and `evaluate` use), else its latest checkpoint."""
    run, _, peer = spec.rpartition(":")
    if not run or not peer:
        raise PeerseqError(f"{what} '{spec}': expected RUN_DIR:peer")
    file = None
    for which in ("best", "last"):  # best/ may lack a peer the checkpoints have
        try:
            file = weights_file(weights_folder(run, which), peer)
        except PeerseqError:
            continue
        if file.is_file():
            break
    if file is None or not file.is_file():
        raise PeerseqError(f"{what} '{spec}': no checkpoint of peer '{peer}' under {run}/")
    return file


def average_run(run_dir: str | Path, last: int) -> Path:
    """Mean of the last N checkpoints' weights for every peer -> RUN/averaged/ (from.json names
    them). Fewer than N kept is an error naming how many there are and train.keep_last, which
    decides it: silently averaging fewer would report one thing and compute another."""
    if last < 1:
        raise PeerseqError(f"--last {last}: average at least 1 checkpoint")
    kept = list_checkpoints(run_dir, interim=False)  # evenly spaced, as the user expects
    if not kept:
        raise PeerseqError(f"{run_dir}: no checkpoints to average")
    if len(kept) < last:
        raise PeerseqError(
            f"{run_dir}: --last {last}, but the run kept {len(kept)} checkpoint"
            f"{'s' * (len(kept) != 1)} ({', '.join(c.name for c in kept)}; train.keep_last "
            f"decides how many): average --last {len(kept)}, or train with train.keep_last={last}"
        )
    ckpts = kept[-last:]
    folder = RunDir(run_dir).averaged
    # written beside and renamed when complete: a failure leaves the earlier averaged/ (or none)
    with atomic_dir(folder) as tmp:
        for peer in peers_in(ckpts[-1]):
            save_weights(weights_file(tmp, peer), average_checkpoints(ckpts, peer))
        (tmp / "from.json").write_text(json.dumps([c.name for c in ckpts]) + "\n")
    return folder
