"""Crash injection for the checkpoint tests: the process dies (os._exit, no cleanup, no finally)
right after the K-th file-system operation of the save of step STEP (or, K a name such as
`rename`, the first operation of that name).

    python -m tests.crashing STEP K cli ARGS...      peerseq's CLI (e.g. train CONFIG)
    python -m tests.crashing STEP all scenario ROOT  tests.rundir.test_checkpoint's scenario,
        once into ROOT/count without crashing, then into ROOT/crash-K for every K: each in a
        child forked from this process (imports are paid once); prints the operations counted
        and each child's exit code

In a test, fork_cli(STEP, K, ARGS, LOG) runs the CLI the same way in a child forked from the
test process itself (no new interpreter, no imports to pay), and all_crash_points(STEP, ROOT)
the second form.

The operations counted are every write that completes (a safetensors file, a torch.save, a text
file), every rename/replace (a directory into place, a file into place, the `latest` pointer)
and every removal (pruning) -- the points a power cut or kill -9 can fall between. K = 0 counts
them without crashing and prints the count.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import peerseq.rundir.checkpoint as ck
import peerseq.rundir.weights as wt

CRASH_CODE = 86
tc = None  # tests.rundir.test_checkpoint, imported once by the forking process


def install(step: int, k: int | str) -> list[str]:
    """Patch the operations; -> the list their names are appended to (during STEP's save)."""
    seen: list[str] = []
    active = [False]

    def tick(name):
        if active[0]:
            seen.append(name)
            if len(seen) == k or name == k:
                sys.stdout.flush()
                os._exit(CRASH_CODE)

    def after(name, fn):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            tick(name)
            return out

        return wrapped

    save = ck.save_checkpoint

    def save_checkpoint(run_dir, at, *args, **kwargs):
        active[0] = at == step
        try:
            return save(run_dir, at, *args, **kwargs)
        finally:
            active[0] = False

    ck.save_checkpoint = save_checkpoint
    wt.save_file = after("write safetensors", wt.save_file)
    ck.torch_save = after("write torch", ck.torch_save)
    ck.write_text = after("write text", ck.write_text)
    os.rename = after("rename", os.rename)
    os.replace = after("replace", os.replace)
    shutil.rmtree = after("rmtree", shutil.rmtree)
    os.unlink = after("unlink", os.unlink)
    return seen


def main(argv: list[str]) -> int:
    step, k, mode, *rest = argv
    if mode == "cli":
        seen = install(int(step), int(k) if k.isdigit() else k)
        import peerseq.run_state  # noqa: F401  (binds save_checkpoint after the patch)
        from peerseq.cli import main as cli

        code = cli(rest)
        print(f"operations: {len(seen)}")
        return code
    # the warm-up run does torch's lazy set-up once, before the forks (one thread)
    print(json.dumps(all_crash_points(int(step), Path(rest[0]))))
    return 0


class Child:
    """A forked child still running: running() reaps it once it has exited; kill() SIGKILLs
    and reaps it unless it has exited already."""

    def __init__(self, pid: int) -> None:
        self.pid, self.code = pid, None

    def running(self) -> bool:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code is None

    def kill(self) -> None:
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
            self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])


def fork_cli(
    step: int, k: int | str, argv: list[str], log: Path, wait: bool = True, env: dict | None = None
):
    """peerseq's CLI (ARGS) in a child forked from this process, its stdout and stderr going to
    LOG, dying right after the K-th operation of the save of STEP (K = 0: no crash); ENV is
    added to the child's environment. -> its exit code, or with wait=False a Child at once."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1), os.dup2(fd, 2)
            sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
            os.environ.update(env or {})
            install(step, k)
            import peerseq.run_state
            from peerseq.cli import main as cli

            peerseq.run_state.save_checkpoint = ck.save_checkpoint  # the name it imported, patched
            code = cli(argv)
        except SystemExit as e:  # argparse's refusals: the code a real process would exit with
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    if not wait:
        return Child(pid)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def all_crash_points(step: int, root: Path, **scenario) -> dict:
    """main's `STEP all scenario ROOT`, from this process: -> its report. SCENARIO: keyword
    arguments of tests.rundir.test_checkpoint.scenario (e.g. interim_at=4)."""
    global tc
    import tests.rundir.test_checkpoint as tc

    tc.scenario(root / "warm-up", **scenario)
    count = _forked(step, 0, root / "count", scenario)
    ops = (root / "count" / "operations").read_text().split()
    codes = {j: _forked(step, j, root / f"crash-{j}", scenario) for j in range(1, len(ops) + 1)}
    return {"operations": len(ops), "ops": ops, "count": count, "codes": codes}


def _forked(step: int, k: int, run_dir: Path, scenario: dict) -> int:
    """The scenario in a forked child crashing at operation k (0: none); -> its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            seen = install(step, k)
            tc.save_checkpoint = ck.save_checkpoint  # the name it imported, patched
            tc.scenario(run_dir, **scenario)
            (run_dir / "operations").write_text(" ".join(x.replace(" ", "_") for x in seen))
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
