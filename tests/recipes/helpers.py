"""Running a recipe's reproduce.sh from the tests, with this interpreter's peerseq."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
