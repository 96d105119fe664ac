"""Running a recipe's reproduce.sh from the tests, with this interpreter's peerseq, and reading
what its runs wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from peerseq.rundir.checkpoint import latest_checkpoint
from peerseq.rundir.weights import load_weights

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def reproduce(recipe: str, *args: str) -> subprocess.CompletedProcess:
    """bash recipes/RECIPE/reproduce.sh ARGS, one intra-op thread; fails the test on a non-zero
    exit, showing the end of its output."""
    bindir = Path(sys.executable).parent
    env = os.environ | {"PEERSEQ": str(bindir / "peerseq"), "PYTHON": sys.executable}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        ["bash", str(RECIPES / recipe / "reproduce.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def records(run: Path, split: str = "train") -> list[dict]:
    """The run's metrics.jsonl rows of one split ("train", "dev", "epoch")."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == split]


def weights(run: Path, peer: str) -> dict[str, torch.Tensor]:
    """A peer's weights: best/ if the run kept one, else its latest checkpoint."""
    folder = run / "best" if (run / "best").is_dir() else latest_checkpoint(run)
    return load_weights(folder / f"model.{peer}.safetensors")
