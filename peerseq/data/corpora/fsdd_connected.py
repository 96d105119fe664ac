"""Connected digits from real FSDD recordings: 2-7 digits of one speaker with short pauses.

Each utterance is a lhotse MixedCut that appends real recordings with silence between them, so
no audio is written: the manifest points at the FSDD files. A split only draws on the same
split's recordings (a test utterance uses test recordings only). Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections import defaultdict

from lhotse import CutSet
from lhotse.cut import Cut, MixedCut
from lhotse.cut.mixed import MixTrack

DEFAULT_SIZES = {"train": 5000, "dev": 500, "test": 500}


def connect(pieces: list[Cut], pauses: list[float], uid: str) -> Cut:
    """Lay pieces one after another with the given silences between them.

    Built as MixedCut tracks at offsets rather than with Cut.pad/append, whose padding cuts get
    random uuid ids: the manifest would differ between two runs with the same seed. lhotse fills
    the gaps between tracks with silence when it mixes.
    """
    tracks, offset = [], 0.0
    for i, piece in enumerate(pieces):
        tracks.append(MixTrack(cut=piece, offset=round(offset, 6)))
        offset += piece.duration + (pauses[i] if i < len(pauses) else 0.0)
    return MixedCut(id=uid, tracks=tracks)


def build(
    single: CutSet,
    n: int,
    seed: int,
    split: str,
    min_digits: int = 2,
    max_digits: int = 7,
    max_pause: float = 0.3,
) -> CutSet:
    """n connected-digit cuts from the single-digit cuts of one split."""
    by_speaker: dict[str, list[Cut]] = defaultdict(list)
    for c in single:
        by_speaker[c.supervisions[0].speaker].append(c)
    speakers = sorted(by_speaker)
    rng = random.Random(f"fsdd-connected/{seed}/{split}")
    cuts = []
    for i in range(n):
        spk = rng.choice(speakers)
        k = rng.randint(min_digits, max_digits)
        pieces = [rng.choice(by_speaker[spk]) for _ in range(k)]
        pauses = [round(rng.uniform(0.0, max_pause), 3) for _ in range(k - 1)]
        cuts.append(connect(pieces, pauses, f"fsddc-{split}-{i:05d}-{spk}"))
    return CutSet.from_cuts(cuts)


def load(single: dict[str, CutSet], seed: int, sizes: dict[str, int]) -> dict[str, CutSet]:
    return {split: build(single[split], sizes[split], seed, split) for split in sizes}
