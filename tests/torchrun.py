"""`peerseq train` as two torchrun processes (gloo on the CPU, one thread each), for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# torchrun's own module: always there with torch, whether or not its console script is on disk
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def train_two_ranks(args: list[str], cwd: Path, timeout: int = 240) -> None:
    """Run `peerseq train ARGS` under torchrun with two processes; fail with their output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "peerseq", "train"]
    proc = subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
