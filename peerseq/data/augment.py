"""Training-time augmentation through lhotse: speed and volume perturbation and additive noise on
the cuts (before features), SpecAugment on the features.

Every random choice comes from the batch's own generator (peerseq.data.loader.batch_rng), so a
batch is augmented the same way for a seed, in a worker or not, and after a resume. lhotse's
SpecAugment draws from Python's, NumPy's and torch's global generators; it runs inside a fork of
all three, seeded from the batch's generator, so the training step's own draws (dropout) are
untouched.
Cut ids are kept (seqKD looks up a teacher's transcripts by id) and so is the text: speed
perturbation changes the duration and lhotse scales the supervision with it.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet, RecordingSet, load_manifest
from lhotse.dataset import CutMix, SpecAugment

from peerseq.data.audio import audio_files
from peerseq.data.config import AugmentConfig, NoiseConfig
from peerseq.data.manifest import SAMPLING_RATE, Faults, recording_from_file
from peerseq.errors import DataError


def load_noise(source: str | Path) -> CutSet:
    """Noise cuts at 16 kHz from a lhotse CutSet/RecordingSet manifest or a folder of audio
    files (searched recursively; each file is checked as the corpora's audio is)."""
    path = Path(source)
    if path.is_dir():
        files = audio_files(path)
        if not files:
            raise DataError(f"augment.noise.source: {path} holds no audio files")
        recs = [
            recording_from_file(f, f"noise-{i:05d}-{f.stem}", Faults()) for i, f in enumerate(files)
        ]
        cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(recs))
    elif path.is_file():
        try:
            manifest = load_manifest(path)
        except Exception as e:  # lhotse raises many types for a bad manifest; all mean the same
            raise DataError(f"augment.noise.source: {path}: not a lhotse manifest ({e})") from None
        if isinstance(manifest, RecordingSet):
            cuts = CutSet.from_manifests(recordings=manifest)
        elif isinstance(manifest, CutSet):
            cuts = manifest
        else:
            raise DataError(
                f"augment.noise.source: {path}: a {type(manifest).__name__}; expected a CutSet "
                "or RecordingSet of noise"
            )
    else:
        raise DataError(f"augment.noise.source: {path}: no such file or folder")
    cuts = cuts.to_eager()
    if len(cuts) == 0:
        raise DataError(f"augment.noise.source: {path}: no noise in it")
    return cuts.resample(SAMPLING_RATE)


class Augmenter:
    """The augmentation of one run's training batches (see AugmentConfig)."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.noise = load_noise(cfg.noise.source) if cfg.noise else None
        s = cfg.specaugment
        self.specaugment = (
            None
            if s is None
            else SpecAugment(
                time_warp_factor=s.time_warp or None,
                num_feature_masks=s.freq_masks,
                features_mask_size=s.freq_width,
                num_frame_masks=s.time_masks,
                frames_mask_size=s.time_width,
                max_frames_mask_fraction=s.max_time_fraction,
                p=s.p,
            )
        )

    def cuts(self, cuts: CutSet, rng: random.Random) -> CutSet:
        """Speed, then volume, then noise (noise is not sped up), each drawn per utterance."""
        c = self.cfg
        if not c.changes_audio():
            return cuts
        out = []
        for cut in cuts:
            if c.speed:
                factor = rng.choice(c.speed)
                if factor != 1.0:
                    cut = cut.perturb_speed(factor, affix_id=False)
            if c.volume and rng.random() < c.volume_p:
                cut = cut.perturb_volume(rng.uniform(*c.volume), affix_id=False)
            out.append(cut)
        cuts = CutSet.from_cuts(out)
        if self.noise is not None:
            cuts = _mix(cuts, self.noise, c.noise, rng)
        return cuts

    def features(self, feats: torch.Tensor, lens: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """SpecAugment of [B, T, F] features within each utterance's lens [B] frames; padding
        stays as the collator made it."""
        if self.specaugment is None:
            return feats
        # time warping only inside each utterance: (index, first frame, frames) per utterance
        segments = torch.stack([torch.arange(len(lens)), torch.zeros_like(lens), lens], dim=1).to(
            torch.int32
        )
        state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(rng.getrandbits(63))
                random.seed(rng.getrandbits(63))
                np.random.seed(rng.getrandbits(32))  # lhotse's time warp draws from NumPy
                out = self.specaugment(feats, segments)
        finally:
            random.setstate(state)
            np.random.set_state(np_state)
        valid = torch.arange(feats.size(1))[None, :] < lens[:, None]
        return torch.where(valid.unsqueeze(-1), out, feats)  # time masks may fall on padding


def _mix(cuts: CutSet, noise: CutSet, cfg: NoiseConfig, rng: random.Random) -> CutSet:
    """lhotse's CutMix with the batch's generator; each cut keeps its id and duration."""
    snr = cfg.snr[0] if len(cfg.snr) == 1 else tuple(cfg.snr)
    mix = CutMix(
        noise,
        snr=snr,
        p=cfg.p,
        pad_to_longest=False,
        preserve_id=True,
        seed=random.Random(rng.getrandbits(63)),
        random_mix_offset=True,
    )
    return mix(cuts)
