"""Free Spoken Digit Dataset: real speech, one digit per file `{digit}_{speaker}_{index}.wav`.

Splits: upstream's rule puts index 0-4 in test; we take index 5-9 of the rest as dev (the same
five recordings per speaker and digit, so dev covers every speaker and digit) and 10-49 as train.
"""

from __future__ import annotations

import re
from pathlib import Path

from lhotse import CutSet, SupervisionSegment

from peerseq.data.manifest import Faults, cuts_from, recording_from_file, resample_to_target
from peerseq.errors import DataError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def split_of(index: int) -> str:
    return "test" if index < 5 else "dev" if index < 10 else "train"


def recordings_dir(src: Path) -> Path:
    """Accept the repository root of FSDD or its recordings/ folder."""
    return src / "recordings" if (src / "recordings").is_dir() else src


def load(src: Path, faults: Faults) -> dict[str, CutSet]:
    """One cut per recording, split by index, resampled to 16 kHz."""
    folder = recordings_dir(src)
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise DataError(f"{folder}: no FSDD recordings (*.wav) found")
    recs, sups = [], []
    for path in files:
        m = NAME.match(path.name)
        if not m:
            faults.handle(DataError(f"{path}: name is not {{digit}}_{{speaker}}_{{index}}.wav"))
            continue
        digit, speaker, index = int(m[1]), m[2], int(m[3])
        rec = recording_from_file(path, path.stem, faults)
        if rec is None:
            continue
        recs.append(rec)
        sups.append(
            SupervisionSegment(
                id=rec.id,
                recording_id=rec.id,
                start=0.0,
                duration=rec.duration,
                text=DIGITS[digit],
                speaker=speaker,
                language="en",
                custom={"split": split_of(index)},
            )
        )
    cuts = cuts_from(recs, sups)
    cuts = resample_to_target(cuts, faults, "fsdd")
    return {
        split: cuts.filter(lambda c, s=split: c.supervisions[0].custom["split"] == s).to_eager()
        for split in ("train", "dev", "test")
    }
