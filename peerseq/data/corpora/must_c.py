"""MuST-C (en -> X speech translation) from a copy the user has, through lhotse's own recipe.

lhotse's `prepare_must_c` makes one supervision per talk segment whose text is the translation
only. An ST corpus needs both texts on one cut, so the English transcript, the `{set}.en` file
beside the translations (same line order as `{set}.yaml`), is joined here: it becomes the
supervision's text (language "en") and the translation moves to `custom[tgt]`, as every
peerseq corpus keeps translations. Sets: train, dev, tst-COMMON (our test), tst-HE (test-he).
"""

from __future__ import annotations

import tempfile
from itertools import groupby
from pathlib import Path

import yaml
from lhotse import CutSet, SupervisionSet, load_manifest

from peerseq.errors import DataError

SETS = {"train": "train", "dev": "dev", "tst-COMMON": "test", "tst-HE": "test-he"}


def _english(txt: Path, name: str) -> dict[str, str]:
    """{lhotse supervision id: English transcript} for one set, from its yaml and .en file."""
    segments = yaml.safe_load((txt / f"{name}.yaml").read_text(encoding="utf-8"))
    lines = (txt / f"{name}.en").read_text(encoding="utf-8").splitlines()
    if len(lines) != len(segments):
        raise DataError(
            f"{txt / (name + '.en')}: {len(lines)} lines for {len(segments)} segments in "
            f"{name}.yaml"
        )
    out, k = {}, 0
    for wav, group in groupby(segments, lambda s: s["wav"]):
        for i, _ in enumerate(group):  # lhotse's id: "{recording id}-seg-{i}" within the talk
            out[f"{Path(wav).stem}-seg-{i}"] = lines[k].strip()
            k += 1
    return out


def load(src: Path, tgt: str) -> dict[str, CutSet]:
    """One cut per segment with the English transcript and the `tgt` translation."""
    from lhotse.recipes.must_c import prepare_must_c

    data = Path(src) / f"en-{tgt}" / "data"
    missing = [n for n in SETS if not (data / n / "txt").is_dir()]
    if missing:
        raise DataError(
            f"--src {src}: not a MuST-C en-{tgt} release (no {data / missing[0] / 'txt'}); "
            "expected en-{tgt}/data/{train,dev,tst-COMMON,tst-HE}/{txt,wav}"
        )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            prepare_must_c(src, tmp, tgt_lang=tgt)
        except (AssertionError, OSError, KeyError) as e:
            raise DataError(f"--src {src}: lhotse's MuST-C recipe failed ({e!r})") from None
        for name, split in SETS.items():
            english = _english(data / name / "txt", name)
            recs = load_manifest(Path(tmp) / f"must_c_recordings_en-{tgt}_{name}.jsonl.gz")
            sups = load_manifest(Path(tmp) / f"must_c_supervisions_en-{tgt}_{name}.jsonl.gz")
            joined = [
                s.with_custom(tgt, s.text).transform_text(lambda _, e=english[s.id]: e)
                for s in sups
            ]
            for s in joined:
                s.language = "en"
            cuts = CutSet.from_manifests(
                recordings=recs, supervisions=SupervisionSet.from_segments(joined)
            )
            out[split] = cuts.trim_to_supervisions(keep_overlapping=False).to_eager()
    return out
