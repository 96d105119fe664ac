"""peerseq: collaborative training of ASR, ST and MT models."""

__version__ = "0.1.0"
