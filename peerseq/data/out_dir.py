"""What `peerseq prepare` may do with an --out directory that exists already.

Reuse it when it holds a corpus prepared with the same settings; replace it (with --force)
only when it holds nothing but what prepare and training write there; refuse anything else,
naming what is in the way. prepare never deletes what it did not write.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from peerseq.errors import DataError

# what prepare (and the feature cache of training) writes into a corpus directory: the only
# entries a --force replacement may delete
OWNED = re.compile(
    r"corpus\.json|(cuts|text)_[^/]+\.jsonl\.gz|tokenizers|audio|shar|features_[a-z0-9]+"
)


def reusable_corpus(out: Path, key: dict, force: bool) -> dict | None:
    """The corpus.json of `out` if it was prepared with the same settings (reuse it); None if
    `out` may be written. Raises DataError for anything prepare did not write."""
    if not out.exists() and not out.is_symlink():
        return None
    if not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a directory; choose another --out")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return None
    try:
        meta = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or "args" not in meta:
            raise ValueError("no 'args'")
    except (OSError, ValueError):
        raise DataError(
            f"--out {out}: exists, is not empty and is not a peerseq corpus (no valid "
            "corpus.json); prepare never overwrites it: choose another --out"
        ) from None
    if meta["args"] == key:
        return meta
    foreign = [e for e in entries if not OWNED.fullmatch(e)]
    if foreign:
        raise DataError(
            f"--out {out}: holds files peerseq did not write ({', '.join(foreign[:5])}); it is "
            "never replaced, not even with --force: choose another --out"
        )
    if not force:
        differ = sorted(
            k for k in key.keys() | meta["args"].keys() if key.get(k) != meta["args"].get(k)
        )
        raise DataError(
            f"--out {out}: holds corpus '{meta.get('name')}' prepared with other settings "
            f"(differs in: {', '.join(differ)}); pass --force to replace it, or choose "
            "another --out"
        )
    return None
