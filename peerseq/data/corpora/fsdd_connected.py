"""Connected digits from real FSDD recordings: 2-7 digits of one speaker with short pauses.

Each utterance is a lhotse MixedCut that appends real recordings with silence between them, so
no audio is written: the manifest points at the FSDD files. A split only draws on the same
split's recordings (a test utterance uses test recordings only). Training utterances draw
recordings with replacement (any number of utterances, each a new combination); dev and test
utterances use each recording at most once, so their utterances are independent samples for the
bootstrap, and a split holds at most (its recordings / 4.5) of them. Deterministic for a seed.
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
    reuse: bool = True,
) -> CutSet:
    """n connected-digit cuts from the single-digit cuts of one split; reuse=False uses each
    recording at most once (and makes fewer than n when the recordings run out)."""
    by_speaker: dict[str, list[Cut]] = defaultdict(list)
    for c in single:
        by_speaker[c.supervisions[0].speaker].append(c)
    speakers = sorted(by_speaker)
    rng = random.Random(f"fsdd-connected/{seed}/{split}")
    if reuse:
        groups = []
        for _ in range(n):
            spk = rng.choice(speakers)
            k = rng.randint(min_digits, max_digits)
            groups.append((spk, [rng.choice(by_speaker[spk]) for _ in range(k)]))
    else:
        groups = _partition(by_speaker, rng, min_digits, max_digits)[:n]
    cuts = []
    for i, (spk, pieces) in enumerate(groups):
        pauses = [round(rng.uniform(0.0, max_pause), 3) for _ in range(len(pieces) - 1)]
        cuts.append(connect(pieces, pauses, f"fsddc-{split}-{i:05d}-{spk}"))
    return CutSet.from_cuts(cuts)


def _partition(
    by_speaker: dict[str, list[Cut]], rng: random.Random, min_digits: int, max_digits: int
) -> list[tuple[str, list[Cut]]]:
    """Each speaker's recordings, shuffled and cut into groups of min-max digits (a last group
    shorter than min_digits is left out), then all groups shuffled."""
    groups = []
    for spk in sorted(by_speaker):
        pool = list(by_speaker[spk])
        rng.shuffle(pool)
        while len(pool) >= min_digits:
            k = rng.randint(min_digits, max_digits)
            groups.append((spk, pool[:k]))
            pool = pool[k:]
    rng.shuffle(groups)
    return groups


def load(
    single: dict[str, CutSet], seed: int, sizes: dict[str, int], notes: list[str] | None = None
) -> dict[str, CutSet]:
    """Every split of sizes; a dev or test split smaller than asked is said in notes."""
    out = {}
    for split, n in sizes.items():
        out[split] = build(single[split], n, seed, split, reuse=split == "train")
        if len(out[split]) < n and notes is not None:
            notes.append(
                f"fsdd-connected {split}: {len(out[split])} utterances, not {n}: its "
                f"{len(single[split])} recordings are each used once"
            )
    return out
