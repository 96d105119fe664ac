"""Where the bundled corpora live: the repository's data/ folder (PEERSEQ_DATA overrides)."""

from __future__ import annotations

import os
from pathlib import Path


def bundled_data_dir() -> Path:
    """The folder holding the corpora that ship with peerseq (fsdd, yesno, librivox5, multi30k)."""
    env = os.environ.get("PEERSEQ_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"
