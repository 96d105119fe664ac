"""Weights files: safetensors (no pickle at all), written atomically, tied weights kept tied.

Tied weights: safetensors refuses two names for one storage. `save_weights` stores each storage
once and records the other names in the file's metadata (`peerseq.aliases`, JSON alias ->
stored name); `load_weights` hands the stored tensor back under every name. Unlike
safetensors.torch.save_model/load_model this works on plain state dicts too (averaged or
exported weights), and the file stays a normal safetensors file for other readers.

Same weights, same bytes: safetensors writes the metadata from a Rust HashMap, whose order
changes from one process to the next, so one set of weights saved twice could give two files
(and two SHA-256s; a retrained MT model, bit-identical, came out as another hash). `save_weights`
rewrites the header with the metadata in sorted order, and `weights_sha256` hashes any file as
if it were: runs record which weights they started from by that hash (rundir/provenance.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import safetensors
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from peerseq.errors import PeerseqError
from peerseq.files import FILE_MODE, fsync_dir, fsync_file, temp_beside
from peerseq.rundir.layout import weights_file

_ALIASES_KEY = "peerseq.aliases"
_HEADER_SIZE = struct.Struct("<Q")  # a safetensors file: u64 header length, JSON header, data
_MAX_HEADER = 100_000_000  # safetensors' own limit on a header


def sorted_metadata(header: bytes) -> bytes:
    """A safetensors JSON header with its `__metadata__` keys in sorted order: the same length,
    the tensors' entries untouched. Returned unchanged when it has no metadata or is not laid
    out as safetensors writes it (compact JSON), so nothing else is ever rewritten."""
    try:
        meta = json.loads(header).get("__metadata__")
    except (ValueError, AttributeError):
        return header
    if not meta:
        return header

    def compact(d: dict, sort: bool) -> bytes:
        text = json.dumps(d, sort_keys=sort, separators=(",", ":"), ensure_ascii=False)
        return b'"__metadata__":' + text.encode("utf-8")

    written, canonical = compact(meta, False), compact(meta, True)
    return header.replace(written, canonical, 1) if header.count(written) == 1 else header


def _read_header(f) -> bytes | None:
    """The JSON header of an open safetensors file (positioned at its start), or None."""
    head = f.read(_HEADER_SIZE.size)
    if len(head) < _HEADER_SIZE.size:
        return None
    (n,) = _HEADER_SIZE.unpack(head)
    if n > _MAX_HEADER:
        return None
    header = f.read(n)
    return header if len(header) == n else None


def weights_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a weights file as `save_weights` writes it now (metadata sorted):
    the same for the same weights, whatever order an older file's metadata happens to be in.
    For a file already in that order it is the SHA-256 of its bytes; a file that is not
    safetensors is hashed as it is."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        header = _read_header(f)
        if header is None:
            f.seek(0)
        else:
            digest.update(_HEADER_SIZE.pack(len(header)) + sorted_metadata(header))
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _sort_metadata_in_place(path: str | os.PathLike) -> None:
    """Rewrite a just-written safetensors file's header with sorted metadata (same length)."""
    with open(path, "r+b") as f:
        header = _read_header(f)
        if header is not None and (canonical := sorted_metadata(header)) != header:
            f.seek(_HEADER_SIZE.size)
            f.write(canonical)


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
    fd, tmp = temp_beside(path, ".tmp")
    os.close(fd)
    try:
        try:
            save_file(tensors, tmp, metadata=metadata)
        except safetensors.SafetensorError as e:  # its I/O errors (a full disk) are not OSError
            raise OSError(errno.EIO, f"cannot write ({e})", str(path)) from None
        _sort_metadata_in_place(tmp)
        os.chmod(tmp, FILE_MODE)  # safetensors writes its own file: 0600 otherwise
        fsync_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


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


def load_checked(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Read and check weights for `model` without touching it; strict on names and shapes."""
    state = load_weights(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise PeerseqError(
            f"{path}: does not match the model: missing keys {short_list(missing)}, "
            f"unexpected keys {short_list(unexpected)}"
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
    files = [weights_file(p, peer) for p in paths]
    last = load_weights(files[-1])
    sums = {k: v.double() for k, v in last.items() if v.is_floating_point()}
    for file in files[:-1]:
        state = load_weights(file)
        if set(state) != set(last):
            diff = sorted(set(state) ^ set(last))
            raise PeerseqError(f"{file}: keys differ from {files[-1]}: {short_list(diff)}")
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


def short_list(keys: list[str], n: int = 8) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return (", ".join(repr(k) for k in keys[:n]) or "none") + more
