"""One writer per run directory: an OS-level lock held for the life of a training run.

`RUN/.lock` is locked with flock(2) (fcntl). The kernel releases the lock when the process ends,
however it ends (exit, exception, kill -9), so a crash never leaves a stale lock to delete by
hand. The file's text names the holder (pid, host, start time, command) for the error a second
run gets; the text is advice, the flock is the lock. flock is advisory and local to a machine
(on NFS it may not exclude a writer on another host): this guards against a user's mistakes, two
jobs started into one `out_dir`, not against a hostile process.

A forked child (a DataLoader worker) would share the parent's flock through the inherited
descriptor and keep a killed run's directory locked until it noticed; children therefore close
the descriptors of the locks their parent holds, at once after the fork.

Within one process the lock is re-entrant: `reproduce` holds a run's lock around the Trainer,
which takes it again (a run another `reproduce` holds raises RunBusy, and that one puts it last
or, for a shared run, waits for it). A
second flock on a new descriptor would conflict with the first (flock locks belong to open file
descriptions, not processes), so the inner acquire borrows the outer one and its release is a
no-op.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import weakref
from pathlib import Path

from peerseq.errors import PeerseqError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None

LOCK_NAME = ".lock"


class RunBusy(PeerseqError):
    """Another process holds the run directory's lock (acquire without wait)."""


_held: weakref.WeakSet[RunLock] = weakref.WeakSet()


def _forget_in_child() -> None:
    """After fork, in the child: the parent's locks are the parent's."""
    for lock in list(_held):
        if lock.fd is not None:
            os.close(lock.fd)
            lock.fd = None
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)


class RunLock:
    """`with RunLock(run_dir):` or `acquire()` / `release()`. When another process holds the
    lock: raises PeerseqError naming the holder, or with wait=True says whom it waits for (on
    stderr) and blocks until the holder lets go."""

    def __init__(self, run_dir: str | os.PathLike, wait: bool = False):
        self.path = Path(run_dir).resolve() / LOCK_NAME  # one lock however the path is spelt
        self.wait = wait
        self.fd: int | None = None
        self.borrowed = False  # this process held the lock already: release leaves it held

    def acquire(self) -> RunLock:
        if any(lock.path == self.path and lock.fd is not None for lock in list(_held)):
            self.borrowed = True
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read(fd)
                if not self.wait:
                    os.close(fd)
                    raise RunBusy(
                        f"{self.path.parent}: another run is writing this directory ({holder}); "
                        "wait for it to end, or train into another out_dir"
                    ) from None
                print(f"{self.path.parent}: waiting for {holder}", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self.fd = fd
        _held.add(self)
        return self

    def release(self) -> None:
        self.borrowed = False
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None
        _held.discard(self)

    def __del__(self) -> None:  # a Trainer built but never fit, then dropped
        try:
            self.release()
        except Exception:  # at interpreter exit os may be half torn down; the kernel frees it
            pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {info['pid']} on {info['host']} since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
