"""Acoustic features through lhotse's extractors, precomputed (lilcom) or on the fly.

    fbank80   80-dim log-mel filterbank (papers 000 and 002)
    spec201   201-dim log power spectrogram (paper 003): a 25 ms window at 16 kHz is 400
              samples, and an FFT of 400 points (not rounded up to 512) has 201 bins
Both use a 25 ms window and a 10 ms shift. Per-utterance mean/variance normalisation is a pure
function on the batch (utterance_cmvn), applied where a paper uses it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, Spectrogram, SpectrogramConfig
from lhotse.features.base import FeatureExtractor

from peerseq.errors import DataError
from peerseq.files import atomic_dir

FRAME_SHIFT = 0.01


def extractor(kind: str) -> FeatureExtractor:
    """The lhotse extractor for a feature kind name."""
    if kind == "fbank80":
        return Fbank(FbankConfig(num_mel_bins=80, frame_shift=FRAME_SHIFT))
    if kind == "spec201":
        return Spectrogram(SpectrogramConfig(round_to_power_of_two=False, frame_shift=FRAME_SHIFT))
    raise DataError(f"unknown feature kind '{kind}': expected fbank80 or spec201")


def feature_dim(kind: str) -> int:
    return extractor(kind).feature_dim(16000)


def precomputed(prepared: str | Path, split: str, kind: str, num_jobs: int = 1) -> CutSet:
    """The split's cuts with `kind` features stored as lilcom beside the manifests.

    Computed once, into features_{kind}/{split}/ (written atomically), and reused after.
    """
    from peerseq.data.manifest import load_split

    folder = Path(prepared) / f"features_{kind}" / split
    manifest = folder / "cuts.jsonl.gz"
    if not manifest.is_file():
        cuts = load_split(prepared, split)
        with atomic_dir(folder) as tmp:
            # lhotse records the storage path in each cut: write where the files will end up.
            stored = cuts.compute_and_store_features(
                extractor(kind),
                storage_path=tmp / "feats",
                num_jobs=num_jobs,
                storage_type=LilcomChunkyWriter,
                progress_bar=False,
            )
            stored = stored.map(partial(_move_storage, old=tmp, new=folder))
            stored.to_file(tmp / "cuts.jsonl.gz")
    return CutSet.from_jsonl_lazy(manifest)


def _move_storage(cut, old: Path, new: Path):
    cut.features.storage_path = cut.features.storage_path.replace(str(old), str(new.resolve()))
    return cut


def utterance_cmvn(x: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance mean/variance normalisation over valid frames.

    x: [B, T, F] features, lengths: [B]. Padded frames stay 0.
    """
    mask = (torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    n = lengths.clamp(min=1).to(x.dtype)[:, None, None]
    mean = (x * mask).sum(1, keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / n
    return ((x - mean) / (var + eps).sqrt()) * mask
