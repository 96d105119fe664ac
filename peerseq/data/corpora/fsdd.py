"""Free Spoken Digit Dataset: real speech, one digit per file `{digit}_{speaker}_{index}.wav`.

Splits by recording index (upstream's rule puts index 0-4 in test): 0-4 test, 5-9 dev (the same
five recordings per speaker and digit, so dev covers every speaker and digit), 10-49 train.
Every split then holds every speaker. For speaker-disjoint evaluation, `test_speakers` (and
`dev_speakers`) put all recordings of those speakers in test (dev), and the index rule applies
to the remaining speakers only: their index 0-9 become dev when no dev speakers are named (a
seen-speaker dev set for model selection) and training data otherwise.
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

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def split_of(
    index: int, speaker: str = "", test_speakers: tuple = (), dev_speakers: tuple = ()
) -> str:
    """The split of one recording (see the module's docstring)."""
    if speaker in test_speakers:
        return "test"
    if speaker in dev_speakers:
        return "dev"
    if index < 5 and not test_speakers:
        return "test"
    if index < 10 and not dev_speakers:
        return "dev"
    return "train"


def recordings_dir(src: Path) -> Path:
    """Accept the repository root of FSDD or its recordings/ folder."""
    return src / "recordings" if (src / "recordings").is_dir() else src


def check_speakers(known: set[str], test_speakers: tuple, dev_speakers: tuple) -> None:
    """Held-out speakers must exist, be held out once, and leave someone to train on."""
    for flag, names in (("--test-speakers", test_speakers), ("--dev-speakers", dev_speakers)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise DataError(
                f"{flag}: no recordings of {', '.join(unknown)}; the speakers are "
                f"{', '.join(sorted(known))}"
            )
    both = sorted(set(test_speakers) & set(dev_speakers))
    if both:
        raise DataError(f"{', '.join(both)}: in both --test-speakers and --dev-speakers")
    if not known - set(test_speakers) - set(dev_speakers):
        raise DataError("--test-speakers and --dev-speakers hold out every speaker: none trains")


def load(
    src: Path, faults: Faults, test_speakers: tuple = (), dev_speakers: tuple = ()
) -> dict[str, CutSet]:
    """One cut per recording, split as the module says, resampled to 16 kHz."""
    folder = recordings_dir(src)
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise DataError(f"{folder}: no FSDD recordings (*.wav) found")
    named = [(path, NAME.match(path.name)) for path in files]
    check_speakers({m[2] for _, m in named if m}, tuple(test_speakers), tuple(dev_speakers))
    recs, sups = [], []
    for path, m in named:
        if not m:
            faults.handle(DataError(f"{path}: name is not {{digit}}_{{speaker}}_{{index}}.wav"))
            continue
        digit, speaker, index = int(m[1]), m[2], int(m[3])
        rec = recording_from_file(path, path.stem, faults)
        if rec is None:
            continue
        recs.append(rec)
        split = split_of(index, speaker, tuple(test_speakers), tuple(dev_speakers))
        sups.append(
            whole_recording(
                rec,
                DIGITS[digit],
                speaker=speaker,
                language="en",
                custom={"split": split},
            )
        )
    cuts = cuts_from(recs, sups)
    cuts = resample_to_target(cuts, faults, "fsdd")
    return {
        split: cuts.filter(lambda c, s=split: c.supervisions[0].custom["split"] == s).to_eager()
        for split in ("train", "dev", "test")
    }
