"""Checkpoints of a set of peers (name -> model, optimizer, scheduler) that survive a crash and
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

Tied weights: safetensors refuses two names for one storage. `save_weights` stores each storage
once and records the other names in the file's metadata (`peerseq.aliases`, JSON alias ->
stored name); `load_weights` hands the stored tensor back under every name. Unlike
safetensors.torch.save_model/load_model this works on plain state dicts too (averaged or
exported weights), and the file stays a normal safetensors file for other readers.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from peerseq.errors import PeerseqError

_STEP_DIR = re.compile(r"^step-(\d+)$")
MARKER = "complete.json"
_ALIASES_KEY = "peerseq.aliases"
# JSON has no tuples and only string keys; lhotse's samplers keep random.getstate() tuples, which
# random.setstate() accepts only as tuples, so both are tagged on the way out and rebuilt on load.
_TUPLE_TAG = "__tuple__"
_ITEMS_TAG = "__dict_items__"


# ---------------------------------------------------------------- weights (safetensors)


def save_weights(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Write `state_dict` to `path` as safetensors, atomically (temp file + fsync + os.replace).

    Names that alias one tensor (tied weights) are stored once and recorded as aliases; tensors
    that merely overlap another's storage, or are not contiguous, are written as copies.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            raise PeerseqError(f"{path}: {name!r} is a {type(t).__name__}, not a tensor")
        t = t.detach()
        view = None
        if t.numel() > 0:
            view = (
                t.device,
                t.untyped_storage().data_ptr(),
                t.storage_offset(),
                tuple(t.shape),
                tuple(t.stride()),
                t.dtype,
            )
        if view in seen:
            aliases[name] = seen[view]
            continue
        if view is not None:
            seen[view] = name
        tensors[name] = t
    storages: dict[int, int] = {}
    for t in tensors.values():
        if t.numel() > 0:
            ptr = t.untyped_storage().data_ptr()
            storages[ptr] = storages.get(ptr, 0) + 1
    for name, t in tensors.items():
        shared = t.numel() > 0 and storages[t.untyped_storage().data_ptr()] > 1
        if shared or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)
        tensors[name] = t.cpu()
    metadata = {"format": "pt", _ALIASES_KEY: json.dumps(aliases, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            save_file(tensors, tmp, metadata=metadata)
        except safetensors.SafetensorError as e:  # its I/O errors (a full disk) are not OSError
            raise OSError(errno.EIO, f"cannot write ({e})", str(path)) from None
        _fsync_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a file written by `save_weights`; aliased names get the same tensor object."""
    path = Path(path)
    if not path.is_file():
        raise PeerseqError(f"{path}: missing weights file (incomplete checkpoint?)")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
        aliases = json.loads(metadata.get(_ALIASES_KEY, "{}"))
    except (safetensors.SafetensorError, OSError, ValueError) as e:
        raise PeerseqError(f"{path}: not a readable safetensors file ({e})") from e
    for alias, target in aliases.items():
        if target not in tensors:
            raise PeerseqError(f"{path}: alias {alias!r} points to missing tensor {target!r}")
        tensors[alias] = tensors[target]
    return tensors


def _load_model_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Read and check weights for `model` without touching it; strict on names and shapes."""
    state = load_weights(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise PeerseqError(
            f"{path}: does not match the model: missing keys {_short(missing)}, "
            f"unexpected keys {_short(unexpected)}"
        )
    for key, t in expected.items():
        if t.shape != state[key].shape:
            raise PeerseqError(
                f"{path}: shape mismatch for {key!r}: checkpoint {tuple(state[key].shape)}, "
                f"model {tuple(t.shape)}"
            )
    return state


def average_checkpoints(paths: Sequence[str | os.PathLike], peer: str) -> dict[str, torch.Tensor]:
    """Mean of `peer`'s weights over the checkpoint directories `paths` (e.g. the last N of
    `list_checkpoints`). Floating tensors are summed in float64 and cast back; integer and bool
    buffers (e.g. BatchNorm's num_batches_tracked) are taken from the last checkpoint. Tied names
    share one tensor in the result, so `save_weights` keeps them tied."""
    if not paths:
        raise PeerseqError("average_checkpoints: no checkpoints given")
    files = [Path(p) / f"model.{peer}.safetensors" for p in paths]
    last = load_weights(files[-1])
    sums = {k: v.double() for k, v in last.items() if v.is_floating_point()}
    for file in files[:-1]:
        state = load_weights(file)
        if set(state) != set(last):
            diff = sorted(set(state) ^ set(last))
            raise PeerseqError(f"{file}: keys differ from {files[-1]}: {_short(diff)}")
        for key, acc in sums.items():
            if state[key].shape != acc.shape:
                raise PeerseqError(f"{file}: shape of {key!r} differs from {files[-1]}")
            acc += state[key].double()
    # one result tensor per stored tensor, so aliases stay the same object
    out: dict[str, torch.Tensor] = {}
    by_id: dict[int, torch.Tensor] = {}
    for key, t in last.items():
        if id(t) not in by_id:
            by_id[id(t)] = (sums[key] / len(files)).to(t.dtype) if key in sums else t
        out[key] = by_id[id(t)]
    return out


# ---------------------------------------------------------------- save / find / load


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, Optimizer],
    schedulers: Mapping[str, LRScheduler],
    extra_state: Mapping[str, Any],
    rng: bool = True,
    keep_last: int | None = None,
) -> Path:
    """Write the checkpoint for `step` atomically and return its directory.

    Peers without an optimizer (a frozen teacher) or without a scheduler are allowed; every
    optimizer/scheduler name must be a model name. `keep_last` (None: keep all) removes the
    oldest complete checkpoints beyond that number, never the one just written.
    """
    _check_peers(models, optimizers, schedulers)
    if keep_last is not None and keep_last < 1:
        raise PeerseqError(f"keep_last must be >= 1 or None, got {keep_last}")
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    if final.exists():
        raise PeerseqError(f"{final}: a checkpoint for step {step} already exists")
    state_json = json.dumps(_to_json(extra_state, "extra_state"), indent=1)

    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.partial-", dir=root))
    try:
        for peer, model in models.items():
            save_weights(tmp / f"model.{peer}.safetensors", model.state_dict())
        for peer, opt in optimizers.items():
            sched = schedulers.get(peer)
            obj = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
            }
            _check_weights_only(obj, f"optim.{peer}.pt")
            _torch_save(obj, tmp / f"optim.{peer}.pt")
        if rng:
            _torch_save(_get_rng_state(), tmp / "rng.pt")
        _write_text(tmp / "state.json", state_json)
        # the marker last: a directory without it, or whose files differ from it, is incomplete
        sizes = {f.name: f.stat().st_size for f in sorted(tmp.iterdir()) if f.is_file()}
        _write_text(tmp / MARKER, json.dumps({"step": step, "files": sizes}, indent=1))
        _fsync_dir(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)
    _write_text(root / "latest", final.name + "\n", atomic=True)
    _prune(root, final, step, keep_last)
    return final


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint directories of a run, oldest step first (`.partial` dirs ignored)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), d)
        for d in root.iterdir()
        if (m := _STEP_DIR.match(d.name)) and _is_complete(d)
    ]
    return [d for _, d in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike, strict: bool = False) -> Path | None:
    """The newest complete checkpoint of a run, else None. The `latest` pointer is not read: a
    crash between a new directory's rename and the pointer's update leaves it one step behind.

    strict (resuming): a `step-*` directory newer than that one which is not complete cannot
    come from a crash (directories get their final name in one rename); it was edited, copied
    or damaged, and raises PeerseqError saying how, rather than being passed over."""
    found = list_checkpoints(run_dir)
    if strict:
        root, newest = Path(run_dir) / "checkpoints", _step_of(found[-1]) if found else -1
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
    root = run_dir / "checkpoints"
    for d in sorted(root.glob(".*")) if root.is_dir() else []:
        if re.search(r"\.(partial|deleting)-|\.tmp$", d.name):
            _remove(d)
            gone.append(d.name)
    for d in sorted(run_dir.glob(".*")) if run_dir.is_dir() else []:
        if _RUN_LEFTOVER.search(d.name):
            _remove(d)
            gone.append(d.name)
    return gone


def load_checkpoint(
    path: str | os.PathLike,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, Optimizer] | None = None,
    schedulers: Mapping[str, LRScheduler] | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore the given peers from checkpoint directory `path` and return its extra_state.

    Every file is read and checked before any object is modified, so a bad checkpoint raises
    PeerseqError (naming the file) and leaves models and optimizers as they were. Peers in the
    checkpoint but not passed in are ignored (e.g. load only the student for decoding).
    """
    path = Path(path)
    optimizers, schedulers = optimizers or {}, schedulers or {}
    _check_peers(models, optimizers, schedulers)
    if not path.is_dir():
        raise PeerseqError(f"{path}: no such checkpoint directory")
    weights = {
        p: _load_model_weights(path / f"model.{p}.safetensors", m) for p, m in models.items()
    }
    optim_states = {p: _torch_load(path / f"optim.{p}.pt") for p in optimizers}
    for peer, sched in schedulers.items():
        if sched is not None and optim_states[peer].get("scheduler") is None:
            raise PeerseqError(f"{path / f'optim.{peer}.pt'}: holds no scheduler state")
    rng_state = _torch_load(path / "rng.pt") if restore_rng else None
    state_file = path / "state.json"
    try:
        extra_state = _from_json(json.loads(state_file.read_text()))
    except (OSError, ValueError) as e:
        raise PeerseqError(f"{state_file}: missing or not valid JSON ({e})") from e

    for peer, model in models.items():
        model.load_state_dict(weights[peer], strict=True)
    for peer, opt in optimizers.items():
        file = path / f"optim.{peer}.pt"
        try:
            opt.load_state_dict(optim_states[peer]["optimizer"])
            if schedulers.get(peer) is not None:
                schedulers[peer].load_state_dict(optim_states[peer]["scheduler"])
        except (KeyError, ValueError, TypeError) as e:
            raise PeerseqError(f"{file}: does not fit optimizer/scheduler of {peer!r} ({e})") from e
    if rng_state is not None:
        _set_rng_state(rng_state, path / "rng.pt")
    return extra_state


# ---------------------------------------------------------------- RNG


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


# ---------------------------------------------------------------- helpers


def _check_peers(models, optimizers, schedulers) -> None:
    for kind, names in (("optimizer", optimizers), ("scheduler", schedulers)):
        extra = sorted(set(names) - set(models))
        if extra:
            raise PeerseqError(f"{kind} given for unknown peer(s) {extra}; peers: {sorted(models)}")
    no_opt = sorted(p for p, s in schedulers.items() if s is not None and p not in optimizers)
    if no_opt:
        raise PeerseqError(f"scheduler given without optimizer for peer(s) {no_opt}")
    for name in models:
        if not name or "/" in name or name.startswith("."):
            raise PeerseqError(f"peer name {name!r} cannot be used in a file name")


def _check_weights_only(obj: Any, where: str) -> None:
    """Refuse at save time what torch.load(weights_only=True) would refuse at resume time (e.g. a
    scheduler keeping a callable object in its state)."""
    if isinstance(obj, torch.Tensor):
        if type(obj) not in (torch.Tensor, nn.Parameter):
            raise PeerseqError(f"{where}: tensor subclass {type(obj).__name__} cannot be saved")
    elif type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            _check_weights_only(k, f"{where}[key]")
            _check_weights_only(v, f"{where}[{k!r}]")
    elif type(obj) in (list, tuple, set, frozenset, torch.Size):
        for i, v in enumerate(obj):
            _check_weights_only(v, f"{where}[{i}]")
    elif not (
        obj is None
        or type(obj) in (bool, int, float, complex, str, bytes)
        or isinstance(obj, (torch.dtype, torch.device))
    ):
        raise PeerseqError(
            f"{where}: {type(obj).__module__}.{type(obj).__name__} would need pickle to load; "
            "optimizer/scheduler state must be tensors, numbers, strings and plain containers"
        )


def _to_json(obj: Any, where: str) -> Any:
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUPLE_TAG: [_to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(type(k) is str for k in obj):
            return {k: _to_json(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return {
            _ITEMS_TAG: [
                [_to_json(k, f"{where}[key]"), _to_json(v, f"{where}[{k!r}]")]
                for k, v in obj.items()
            ]
        }
    raise PeerseqError(f"{where}: {type(obj).__name__} is not JSON-able (state.json)")


def _from_json(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1 and _TUPLE_TAG in obj:
            return tuple(_from_json(v) for v in obj[_TUPLE_TAG])
        if len(obj) == 1 and _ITEMS_TAG in obj:
            return {_hashable(_from_json(k)): _from_json(v) for k, v in obj[_ITEMS_TAG]}
        return {k: _from_json(v) for k, v in obj.items()}
    return obj


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _torch_save(obj: Any, file: Path) -> None:
    with open(file, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:  # torch's zip writer reports a failed write (full disk) so
            raise OSError(errno.EIO, f"cannot write ({e})", str(file)) from None
        f.flush()
        os.fsync(f.fileno())


def _torch_load(file: Path) -> Any:
    if not file.is_file():
        raise PeerseqError(f"{file}: missing (incomplete checkpoint?)")
    try:
        # weights_only: tensors and plain containers only; any other global is refused
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for refused globals, RuntimeError for a bad zip
        raise PeerseqError(f"{file}: {_load_failure(e)}") from None


def _load_failure(error: Exception) -> str:
    """What torch.load(weights_only=True) refused, in one line. torch's own message advises
    loading with weights_only=False, which would run the code the file carries: never repeated
    here. peerseq writes only tensors, numbers, strings and plain containers there."""
    text = str(error)
    found = re.search(r"unsupported global:? (?:GLOBAL )?(\S+)", text, re.I) or re.search(
        r"Unsupported operand (\S+)", text
    )
    if found:
        return (
            f"refused: it asks to load {found.group(1)}, which is code or an object, not "
            "checkpoint data (peerseq writes only tensors, numbers, strings and plain "
            "containers there); the file was not written by peerseq or has been tampered with"
        )
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = next((ln for ln in lines if "weights_only" not in ln), type(error).__name__)
    return f"not a readable checkpoint file ({first[:200]})"


def _write_text(file: Path, text: str, atomic: bool = False) -> None:
    target = file
    if atomic:
        fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
        os.close(fd)
        file = Path(tmp)
    try:
        with open(file, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if atomic:
            os.replace(file, target)
            _fsync_dir(target.parent)
    except BaseException:
        if atomic:
            file.unlink(missing_ok=True)
        raise


def _fsync_file(file: Path) -> None:
    with open(file, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    # makes a rename durable; directories cannot be opened on Windows, where this is skipped
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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


def _remove(path: Path) -> None:
    """Rename out of the way first, then delete: a crash mid-delete leaves a hidden leftover,
    never a half-deleted directory under a name that is read."""
    if path.is_dir() and not path.is_symlink():
        doomed = path.with_name(f".{path.name.lstrip('.')}.deleting-{os.urandom(4).hex()}")
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _prune(root: Path, just_written: Path, step: int, keep_last: int | None) -> None:
    # leftovers of crashed saves/deletes at older steps; a newer one could be another writer's
    for d in root.glob(".*"):
        m = re.match(r"^\.step-(\d+)\.(partial|deleting)-", d.name)
        if (m and (int(m.group(1)) < step or m.group(2) == "deleting")) or (
            d.name.startswith(".latest.") and d.name.endswith(".tmp")
        ):
            _remove(d)
    if keep_last is None:
        return
    done = [d for d in list_checkpoints(root.parent) if d != just_written]
    for d in done[: max(0, len(done) - (keep_last - 1))]:
        _remove(d)


def _short(keys: list[str], n: int = 8) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return (", ".join(repr(k) for k in keys[:n]) or "none") + more
