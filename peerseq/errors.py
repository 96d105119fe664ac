"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class PeerseqError(Exception):
    """Bad input or configuration: the message names the file, line or field and what was
    expected."""


class DataError(PeerseqError):
    """A corpus, manifest, audio or text file is not what peerseq expected."""
