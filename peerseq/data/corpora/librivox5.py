"""Five read sentences from LibriVox (CMU pocketsphinx test data): a tiny real read-speech test set.

`transcription` has lines `<s> words </s> (id)`; the audio is `{id}.wav`. All five are test.
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
from peerseq.data.text import read_lines
from peerseq.errors import DataError

LINE = re.compile(r"^<s>(.*)</s>\s*\((\S+)\)\s*$")


def load(src: Path, faults: Faults) -> dict[str, CutSet]:
    trans = src / "transcription"
    recs, sups = [], []
    for i, line in enumerate(read_lines(trans, faults.notes), start=1):
        if not line.strip():
            continue
        m = LINE.match(line.strip())
        if not m:
            faults.handle(DataError(f"{trans}:{i}: expected '<s> words </s> (id)'"))
            continue
        text, uid = m[1].strip(), m[2]
        if not text:
            faults.handle(DataError(f"{trans}:{i}: empty transcript for {uid}"))
            continue
        rec = recording_from_file(src / f"{uid}.wav", uid, faults)
        if rec is None:
            continue
        recs.append(rec)
        sups.append(
            whole_recording(
                rec,
                text,
                speaker=uid.rsplit("-", 1)[0],
                language="en",
            )
        )
    if not recs:
        raise DataError(f"{trans}: no usable utterances")
    cuts = cuts_from(recs, sups)
    return {"test": resample_to_target(cuts, faults, "librivox5").to_eager()}
