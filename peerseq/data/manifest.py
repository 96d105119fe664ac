"""Prepared corpora on disk: lhotse manifests per split plus a small corpus.json.

A prepared directory holds
    corpus.json                 name, kind (speech|text), split sizes, seed, notes
    cuts_{split}.jsonl.gz       lhotse CutSet (speech corpora)
    text_{split}.jsonl.gz       one JSON object per sentence {"id", "en", "de", ...} (text corpora)
    tokenizers/                 saved tokenizers, reloaded by name
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lhotse import AudioSource, CutSet, Recording, SupervisionSegment
from lhotse.cut import Cut

from peerseq.data.audio import check_audio
from peerseq.errors import DataError
from peerseq.files import atomic_write_text

SPLITS = ("train", "dev", "test")
SAMPLING_RATE = 16000


@dataclass
class Faults:
    """Per-utterance faults: raised at once, or with skip_invalid counted and reported."""

    skip_invalid: bool = False
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def handle(self, err: DataError) -> None:
        if not self.skip_invalid:
            raise err
        self.skipped.append(str(err))


def recording_from_file(path: Path, rec_id: str, faults: Faults) -> Recording | None:
    """A checked lhotse Recording for one mono audio file, or None if skipped as invalid."""
    try:
        info = check_audio(path)
    except DataError as e:
        faults.handle(e)
        return None
    return Recording(
        id=rec_id,
        sources=[AudioSource(type="file", channels=[0], source=str(Path(path).resolve()))],
        sampling_rate=info.sampling_rate,
        num_samples=info.num_samples,
        duration=info.duration,
    )


def whole_recording(rec: Recording, text: str, **fields) -> SupervisionSegment:
    """The supervision of a recording that is one utterance (id = the recording's id)."""
    return SupervisionSegment(
        id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration, text=text, **fields
    )


def cuts_from(recs: list[Recording], sups: list) -> CutSet:
    """One cut per recording with its supervisions, the cut id equal to the recording id."""
    from lhotse import RecordingSet, SupervisionSet

    cuts = CutSet.from_manifests(
        RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
    )
    return CutSet.from_cuts(c.with_id(c.recording_id) for c in cuts)


def cut_text(cut: Cut, lang: str = "transcript") -> str:
    """The cut's text: its transcript ("transcript", or the supervision's own language code) or a
    translation kept in the supervision's custom[lang].

    Supervisions are joined in time order, so concatenated cuts (fsdd-connected) read naturally.
    """
    sups = sorted(cut.supervisions, key=lambda s: s.start)
    parts = [
        (s.text or "") if lang in ("transcript", s.language) else translations(s).get(lang, "")
        for s in sups
    ]
    return " ".join(p.strip() for p in parts if p and p.strip())


def resample_to_target(cuts: CutSet, faults: Faults, name: str) -> CutSet:
    """Resample every cut to 16 kHz, and say so in the notes when any was at another rate."""
    rates = sorted({c.sampling_rate for c in cuts})
    other = [r for r in rates if r != SAMPLING_RATE]
    if other:
        faults.notes.append(f"{name}: audio at {other} Hz resampled to {SAMPLING_RATE} Hz")
    return cuts.resample(SAMPLING_RATE)


def recording_ids(cuts: CutSet) -> set[str]:
    """The recordings a split reads (a MixedCut reads its tracks')."""
    ids = set()
    for c in cuts:
        tracks = [t.cut for t in c.tracks] if hasattr(c, "tracks") else [c]
        ids.update(t.recording_id for t in tracks if t.has_recording)
    return ids


def split_speakers(splits: dict[str, CutSet]) -> dict[str, list[str]]:
    """{split: its speakers, sorted} (supervisions without a speaker are left out)."""
    return {
        split: sorted({s.speaker for c in cuts for s in c.supervisions if s.speaker})
        for split, cuts in splits.items()
    }


def write_cuts(cuts: CutSet, out: Path, split: str) -> None:
    cuts.to_file(out / f"cuts_{split}.jsonl.gz")


def write_text(rows: Iterable[dict], out: Path, split: str) -> None:
    with gzip.open(out / f"text_{split}.jsonl.gz", "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_corpus_json(out: Path, meta: dict) -> None:
    """corpus.json, written atomically (prepare rewrites it in place to add spm_asr)."""
    atomic_write_text(out / "corpus.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def read_corpus_json(prepared: Path) -> dict:
    path = Path(prepared) / "corpus.json"
    if not path.is_file():
        raise DataError(f"{prepared}: not a prepared corpus (no corpus.json); run peerseq prepare")
    return json.loads(path.read_text())


def load_cutset(path: str | Path) -> CutSet:
    """Load a lhotse CutSet manifest, with a clear error when the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    try:
        cuts = CutSet.from_file(path)
        first = next(iter(cuts), None)
    except Exception as e:  # lhotse raises many types for a bad manifest; all mean the same
        raise DataError(f"{path}: not a lhotse CutSet manifest ({type(e).__name__}: {e})") from None
    if first is None:
        raise DataError(f"{path}: manifest has no cuts")
    if not isinstance(first, Cut):
        raise DataError(f"{path}: expected a CutSet, found {type(first).__name__} entries")
    return cuts


def load_split(prepared: str | Path, split: str) -> CutSet:
    """The CutSet of one split of a prepared speech corpus."""
    path = Path(prepared) / f"cuts_{split}.jsonl.gz"
    if not path.is_file():
        raise DataError(f"{prepared}: no split '{split}' (expected {path.name})")
    return CutSet.from_jsonl_lazy(path)


def load_text_split(prepared: str | Path, split: str) -> list[dict]:
    """The sentences of one split of a prepared text corpus (or a speech corpus's texts)."""
    path = Path(prepared) / f"text_{split}.jsonl.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    return [text_row(c) for c in load_split(prepared, split)]


def text_row(cut: Cut) -> dict:
    """{"id", "transcript", <language>: transcript, <lang>: translation, ...} for one cut."""
    row = {"id": cut.id, "transcript": cut_text(cut)}
    for s in cut.supervisions:
        if s.language:
            row[s.language] = row["transcript"]
        for k in translations(s):
            row[k] = cut_text(cut, k)
    return row


def translations(sup) -> dict[str, str]:
    """A supervision's texts in other languages: its custom string fields by language code,
    and lhotse's `custom["translated_text"]` mapping (iwslt22_ta, ...)."""
    custom = sup.custom or {}
    out = {k: v for k, v in custom.items() if isinstance(v, str)}
    nested = custom.get("translated_text")
    if isinstance(nested, dict):
        out |= {k: v for k, v in nested.items() if isinstance(v, str)}
    return out
