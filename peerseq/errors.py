"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class PeerseqError(Exception):
    """Bad input or configuration: the message names the file, line or field and what was
    expected."""


def describe(error: BaseException) -> str:
    """One line for the user: a PeerseqError's text, or an OSError's path and cause (what the
    file system refused: a full disk, a read-only mount, a file where a directory belongs)."""
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return str(error)


class DataError(PeerseqError):
    """A corpus, manifest, audio or text file is not what peerseq expected."""
