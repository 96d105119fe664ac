"""Multi30k task 1 raw text: train (29,000), val (1,014) and test_2016_flickr (1,000) sentences,
aligned across English, German and French. val is our dev split."""

from __future__ import annotations

from pathlib import Path

from peerseq.data.text import read_parallel

FILES = {"train": "train", "dev": "val", "test": "test_2016_flickr"}
LANGS = ("en", "de", "fr")


def load(
    src: Path, limit: int | None = None, notes: list[str] | None = None
) -> dict[str, list[dict]]:
    """{split: [{"id", "en", "de", "fr"}, ...]} (the first `limit` sentences of each split);
    what was repaired on reading (a byte-order mark) is said in `notes`."""
    out = {}
    for split, stem in FILES.items():
        rows = read_parallel({lang: src / f"{stem}.{lang}" for lang in LANGS}, notes=notes)
        rows = rows[:limit] if limit else rows
        out[split] = [{"id": f"m30k-{split}-{i:05d}", **r} for i, r in enumerate(rows)]
    return out
