"""Kaldi's yesno: 60 recordings of one speaker saying 8 Hebrew yes/no words each.

The label is the file name (1 = yes, 0 = no); we write the words as "yes"/"no". Splits follow
Kaldi's recipe (the first 31 files, sorted, for training, the other 29 for test), with the last 4
of those 31 kept as dev.
"""

from __future__ import annotations

import re
from pathlib import Path

from lhotse import CutSet

from peerseq.data.manifest import (
    Faults,
    cuts_from,
    recording_from_file,
    resample_to_target,
    whole_recording,
)
from peerseq.errors import DataError

NAME = re.compile(r"^[01](_[01]){7}\.wav$")


def load(src: Path, faults: Faults) -> dict[str, CutSet]:
    folder = src / "waves_yesno" if (src / "waves_yesno").is_dir() else src
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise DataError(f"{folder}: no yesno recordings (*.wav) found")
    recs, sups = [], []
    for path in files:
        if not NAME.match(path.name):
            faults.handle(
                DataError(f"{path}: name is not eight 0/1 labels like 0_1_1_0_0_1_0_1.wav")
            )
            continue
        rec = recording_from_file(path, path.stem, faults)
        if rec is None:
            continue
        words = " ".join("yes" if b == "1" else "no" for b in path.stem.split("_"))
        recs.append(rec)
        sups.append(
            whole_recording(
                rec,
                words,
                speaker="yesno",
                language="he",
            )
        )
    cuts = resample_to_target(
        cuts_from(recs, sups),
        faults,
        "yesno",
    ).to_eager()
    ids = sorted(c.id for c in cuts)
    train, test = set(ids[:27]), set(ids[31:])
    dev = set(ids[27:31])
    return {
        "train": cuts.filter(lambda c: c.id in train).to_eager(),
        "dev": cuts.filter(lambda c: c.id in dev).to_eager(),
        "test": cuts.filter(lambda c: c.id in test).to_eager(),
    }
