"""Durable, atomic file-system writes: nothing half-written is ever left under the final name
(files fsynced before they are renamed into place, renames made durable by fsyncing the folder)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from peerseq.errors import PeerseqError


class DirectoryTaken(PeerseqError):
    """atomic_dir(replace=False) found its destination taken when the work was done."""


@contextlib.contextmanager
def atomic_dir(final: Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces `final` by rename.

    On an exception the temporary directory is removed and `final` is left as it was.
    The sibling lives on the same filesystem, so the rename is atomic. replace=False: `final`
    may be absent or an empty directory, nothing else; if something is there by the time the
    work is done, PeerseqError, and the work is removed rather than what is there.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not replace:
        try:  # onto nothing, or onto an empty directory; a non-empty one refuses (ENOTEMPTY)
            os.rename(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DirectoryTaken(
                f"{final}: something was written there while this ran ({e.strerror}); left as it is"
            ) from None
    elif final.exists():
        # Move the old one aside first: rename cannot replace a non-empty directory.
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file; mkstemp gives 0600


def temp_beside(path: Path, suffix: str = "") -> tuple[int, str]:
    """(fd, name) of a new temporary file in path's folder, for a write then an atomic rename,
    with the permissions open() would give path (mkstemp's 0600 would make a copied export or
    a shared run unreadable to others)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to path through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write text (UTF-8) to path through a temporary file and an atomic rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def ensure_writable_dir(path: Path, what: str) -> None:
    """Create `path` (and its parents) and write a probe file in it, before any work: an error
    names the setting it came from (`what`: --out, out_dir) and the cause, in one line.

    Tried rather than asked (os.access): root passes every permission check, and read-only or
    full file systems only show themselves when written."""
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        where = "exists and is" if blocker == path else f"is under {blocker}, which is"
        raise PeerseqError(f"{what} {path}: {where} a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise PeerseqError(
            f"{what} {path}: cannot write there ({e.strerror or e}); choose another directory"
        ) from None


def write_text(file: Path, text: str, atomic: bool = False) -> None:
    target = file
    if atomic:
        fd, tmp = temp_beside(file, ".tmp")
        os.close(fd)
        file = Path(tmp)
    try:
        with open(file, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if atomic:
            os.replace(file, target)
            fsync_dir(target.parent)
    except BaseException:
        if atomic:
            file.unlink(missing_ok=True)
        raise


def fsync_file(file: Path) -> None:
    with open(file, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(directory: Path) -> None:
    # makes a rename durable; directories cannot be opened on Windows, where this is skipped
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove(path: Path) -> None:
    """Rename out of the way first, then delete: a crash mid-delete leaves a hidden leftover,
    never a half-deleted directory under a name that is read."""
    if path.is_dir() and not path.is_symlink():
        doomed = path.with_name(f".{path.name.lstrip('.')}.deleting-{os.urandom(4).hex()}")
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
