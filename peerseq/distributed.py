"""Processes and devices: torch.distributed under torchrun (gloo on CPU, nccl on GPU), device
choice and bf16 autocast."""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import os
import platform
import re
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass
class Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather(self, obj) -> list:
        """Every rank's `obj` (small, picklable), in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's `obj` (a small picklable value) on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether `flag` is true on any rank (every rank gets the same answer)."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())


def init_distributed(device: torch.device, timeout: float | None = None) -> Dist:
    """Join the process group torchrun describes in the environment (single process otherwise).

    timeout (seconds): how long a collective waits for a rank that stopped answering before it
    fails (gloo's own default is 30 minutes)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout) if timeout else None,
        )
    return Dist(world, dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown_distributed(barrier: bool = True) -> None:
    """Leave the process group cleanly, on every rank after a run that ended well (the caller
    has dropped its DDP wrappers, whose reducers hold the group): a barrier, then the group is
    destroyed while the interpreter is fully alive. Left to interpreter exit, gloo's worker
    threads can outlive Python and abort the process (SIGABRT, "terminate called without an
    active exception") after a run that finished."""
    if not dist.is_initialized():
        return
    if barrier:  # after a run that ended well every rank is here; after an error, not waited
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def is_timeout(error: BaseException) -> bool:
    """Whether a collective failed because another rank did not answer in time."""
    # gloo: "Timed out waiting 4000ms for recv operation", "Application timeout caused pair
    # closure"; nccl's watchdog: "Watchdog caught collective operation timeout"
    found = re.search(r"timed out|timeout caused|operation timeout", str(error), re.I)
    return isinstance(error, RuntimeError) and found is not None


def pick_device(spec: str) -> torch.device:
    """auto: this process's GPU when there is one (LOCAL_RANK under torchrun), else the CPU."""
    if spec == "auto" or spec == "cuda":
        if torch.cuda.is_available() or spec == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
        return torch.device("cpu")
    return torch.device(spec)


def cpu_bf16_supported() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX-512 BF16 / AMX).

    torch.backends.mkldnn.is_bf16_supported() where torch has it; torch 2.13's CPU build does
    not expose it there, only as the operator it wraps (torch.ops.mkldnn)."""
    check = getattr(torch.backends.mkldnn, "is_bf16_supported", None)
    if check is None:
        check = torch.ops.mkldnn._is_mkldnn_bf16_supported
    return bool(check())


def precision(device: torch.device, bf16: bool) -> str:
    """What a run's forward passes compute in: "bf16" (autocast) or "fp32" (autocast_factory)."""
    return "bf16" if bf16 and (device.type != "cpu" or cpu_bf16_supported()) else "fp32"


def machine(device: torch.device) -> str:
    """The processor a run trains on, as a results page names it: the GPU's name, or the CPU's
    model (/proc/cpuinfo, else platform) with its core count and whether it has native bf16."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    bf16 = "native bf16" if cpu_bf16_supported() else "no native bf16"
    return f"{name}, {os.cpu_count()} cores, {bf16}"


def autocast_factory(device: torch.device, bf16: bool):
    """A no-argument context factory: bf16 autocast where it is fast, else nothing.

    On CPUs without native bf16 (AVX2 only) a bf16 matmul runs hundreds of times slower than
    fp32, so bf16 is used on the CPU only where oneDNN says it is supported.
    """
    if not bf16:
        return contextlib.nullcontext
    if precision(device, bf16) == "fp32":
        warnings.warn(
            "bf16 requested but this CPU has no native bf16 support: training in fp32",
            stacklevel=2,
        )
        return contextlib.nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)


def checksum(model: torch.nn.Module) -> dict:
    """float64 sum and sum of squares of the parameters, and a sha256 of their bytes."""
    h, total, squares = hashlib.sha256(), 0.0, 0.0
    for name, p in model.named_parameters():
        x = p.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
        total += float(x.double().sum())
        squares += float(x.double().square().sum())
    return {"sum": total, "sum_sq": squares, "sha256": h.hexdigest()}
