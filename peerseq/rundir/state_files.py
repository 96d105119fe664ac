"""Optimiser and run state stored without arbitrary pickles: torch files that
torch.load(weights_only=True) reads (checked at save time), and state.json with tuples and
non-string keys tagged so they round-trip."""

from __future__ import annotations

import errno
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from peerseq.errors import PeerseqError

# JSON has no tuples and only string keys; lhotse's samplers keep random.getstate() tuples, which
# random.setstate() accepts only as tuples, so both are tagged on the way out and rebuilt on load.
_TUPLE_TAG = "__tuple__"
_ITEMS_TAG = "__dict_items__"


def check_weights_only(obj: Any, where: str) -> None:
    """Refuse at save time what torch.load(weights_only=True) would refuse at resume time (e.g. a
    scheduler keeping a callable object in its state)."""
    if isinstance(obj, torch.Tensor):
        if type(obj) not in (torch.Tensor, nn.Parameter):
            raise PeerseqError(f"{where}: tensor subclass {type(obj).__name__} cannot be saved")
    elif type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            check_weights_only(k, f"{where}[key]")
            check_weights_only(v, f"{where}[{k!r}]")
    elif type(obj) in (list, tuple, set, frozenset, torch.Size):
        for i, v in enumerate(obj):
            check_weights_only(v, f"{where}[{i}]")
    elif not (
        obj is None
        or type(obj) in (bool, int, float, complex, str, bytes)
        or isinstance(obj, (torch.dtype, torch.device))
    ):
        raise PeerseqError(
            f"{where}: {type(obj).__module__}.{type(obj).__name__} would need pickle to load; "
            "optimizer/scheduler state must be tensors, numbers, strings and plain containers"
        )


def to_json(obj: Any, where: str) -> Any:
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUPLE_TAG: [to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(type(k) is str for k in obj):
            return {k: to_json(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return {
            _ITEMS_TAG: [
                [to_json(k, f"{where}[key]"), to_json(v, f"{where}[{k!r}]")] for k, v in obj.items()
            ]
        }
    raise PeerseqError(f"{where}: {type(obj).__name__} is not JSON-able (state.json)")


def from_json(obj: Any) -> Any:
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1 and _TUPLE_TAG in obj:
            return tuple(from_json(v) for v in obj[_TUPLE_TAG])
        if len(obj) == 1 and _ITEMS_TAG in obj:
            return {_hashable(from_json(k)): from_json(v) for k, v in obj[_ITEMS_TAG]}
        return {k: from_json(v) for k, v in obj.items()}
    return obj


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def torch_save(obj: Any, file: Path) -> None:
    with open(file, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:  # torch's zip writer reports a failed write (full disk) so
            raise OSError(errno.EIO, f"cannot write ({e})", str(file)) from None
        f.flush()
        os.fsync(f.fileno())


def torch_load(file: Path) -> Any:
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
