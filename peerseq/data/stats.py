"""Corpus statistics for the demo's table: utterances, hours, speakers, vocabulary sizes."""

from __future__ import annotations

from pathlib import Path

from peerseq.data.manifest import load_split, load_text_split, read_corpus_json
from peerseq.data.tokenizers import load_tokenizer


def corpus_stats(prepared: str | Path) -> dict:
    """{"name", "utterances": {split: n}, "hours", "speakers", "words", "vocab": {name: size}}."""
    prepared = Path(prepared)
    meta = read_corpus_json(prepared)
    stats = {"name": meta["name"], "utterances": {}, "hours": None, "speakers": None}
    words: set[str] = set()
    if meta["kind"] == "speech":
        seconds, speakers = 0.0, set()
        for split in meta["splits"]:
            cuts = load_split(prepared, split)
            n = 0
            for c in cuts:
                n += 1
                seconds += c.duration
                speakers.update(s.speaker for s in c.supervisions if s.speaker)
                if split == "train" or len(meta["splits"]) == 1:
                    words.update(" ".join(s.text or "" for s in c.supervisions).lower().split())
            stats["utterances"][split] = n
        stats["hours"] = seconds / 3600
        stats["speakers"] = len(speakers)
    else:
        for split in meta["splits"]:
            rows = load_text_split(prepared, split)
            stats["utterances"][split] = len(rows)
            if split == "train":
                words.update(w for r in rows for w in r["en"].lower().split())
    stats["words"] = len(words)
    folder = prepared / "tokenizers"
    stats["vocab"] = {
        p.stem: load_tokenizer(prepared, p.stem).vocab_size for p in sorted(folder.glob("*"))
    }
    return stats
