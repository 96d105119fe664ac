"""`peerseq reproduce ... --lanes N`: the same command in N processes side by side, one thread
each (small models train faster as two one-thread processes than as one two-thread process).

Every lane walks the whole plan. A run another lane is training is put last and waited for at
the end (reproduce.py, through the run's lock), so the lanes train different runs at once and
each ends when every run of the plan is done; a run the others build on (pre-training, a
teacher) is trained by one lane while the others wait for it. This process is lane 1 and
prints as usual; lanes 2..N write to RUNS/lane-K.log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from peerseq.errors import PeerseqError

ONE_THREAD = "train.num_threads=1"


def lane_overrides(overrides: list[str]) -> list[str]:
    """Every lane's overrides: one thread each, unless the command chose a number."""
    if any(o.startswith("train.num_threads=") for o in overrides):
        return list(overrides)
    return [*overrides, ONE_THREAD]


def other_lane_argv(argv: list[str], overrides: list[str]) -> list[str]:
    """The command line of lanes 2..N: argv (before `--`) without --lanes, then the overrides."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--lanes":
            skip = True
        elif not a.startswith("--lanes="):
            out.append(a)
    return [*out, "--", *overrides]


class Lanes:
    """Lanes 2..n of one reproduce command, started at once: `with Lanes(...)` around lane 1's
    own work; leaving waits for them (stops them if lane 1 failed) and raises PeerseqError
    naming the log of any lane that failed."""

    def __init__(self, n: int, argv: list[str], log_dir: Path):
        self.n, self.argv, self.log_dir = n, argv, Path(log_dir)
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def __enter__(self) -> Lanes:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for k in range(2, self.n + 1):
            log = self.log_dir / f"lane-{k}.log"
            with open(log, "w") as f:  # the child keeps its own descriptor
                proc = subprocess.Popen(
                    [sys.executable, "-m", "peerseq", *self.argv],
                    stdout=f, stderr=subprocess.STDOUT,
                )  # fmt: skip
            print(f"lane {k}: pid {proc.pid}, output in {log}", flush=True)
            self.procs.append((proc, log))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # lane 1 failed or was interrupted: the others stop too
            for proc, _ in self.procs:
                proc.terminate()
        codes = [(p.wait(), log) for p, log in self.procs]
        failed = [f"lane {log.stem[5:]} failed (exit {c}): see {log}" for c, log in codes if c]
        if failed and exc_type is None:
            raise PeerseqError("; ".join(failed))
