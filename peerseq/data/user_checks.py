"""Cuts from outside peerseq (a user's manifest, folder, Kaldi directory, MuST-C) get the
checks the bundled corpora get, before anything is written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from lhotse import CutSet

from peerseq.data import manifest as mf
from peerseq.data.audio import check_audio
from peerseq.errors import DataError


def _recordings(cut) -> list:
    """The recordings a cut reads: its own, or its tracks' (a MixedCut); padding reads none."""
    if hasattr(cut, "tracks"):
        return [t.cut.recording for t in cut.tracks if t.cut.has_recording]
    return [cut.recording] if cut.has_recording else []


def _check_recording(rec, allow_nonlocal: bool) -> None:
    """The same checks as the bundled corpora's audio (peerseq.data.audio.check_audio), and the
    manifest's claims (rate, length) against the file. Raises DataError naming what is wrong."""
    if not (math.isfinite(rec.duration) and rec.duration > 0):
        raise DataError(f"recording {rec.id}: duration {rec.duration}, expected > 0")
    for src in rec.sources:
        if src.type != "file":
            if not allow_nonlocal:
                raise DataError(
                    f"recording {rec.id}: audio source of type '{src.type}' refused (only local "
                    "files are read; 'command' would run a shell command from the manifest): "
                    "pass --allow-nonlocal-audio if you trust this manifest"
                )
            try:
                samples = rec.load_audio()
            except Exception as e:  # whatever the source does wrong, it is this recording's
                raise DataError(f"recording {rec.id}: cannot load its audio ({e})") from None
            if samples.size == 0 or not np.isfinite(samples).all():
                raise DataError(f"recording {rec.id}: empty audio or NaN/infinite samples")
            continue
        info = check_audio(src.source, channels=len(src.channels))
        # a recording lhotse resampled (or sped up...) declares the rate and length after its
        # transforms; the file has the rate before them
        transforms = rec.transforms or []
        first = transforms[0] if transforms else None
        if isinstance(first, dict):
            first = first.get("kwargs", first)
            rate = first.get("source_sampling_rate", rec.sampling_rate)
        else:
            rate = getattr(first, "source_sampling_rate", rec.sampling_rate)
        if info.sampling_rate != rate:
            raise DataError(
                f"recording {rec.id}: sampling_rate {rate} in the manifest, "
                f"{info.sampling_rate} Hz in {src.source}"
            )
        if not transforms and abs(info.num_samples - rec.num_samples) > 0.025 * rate:
            raise DataError(
                f"recording {rec.id}: num_samples {rec.num_samples} in the manifest, "
                f"{info.num_samples} in {src.source}"
            )


def check_user_cuts(cuts: CutSet, path: Path, faults: mf.Faults, allow_nonlocal: bool) -> CutSet:
    """Every cut of a user's manifest gets the checks the bundled corpora get: a non-empty
    transcript, one channel, a positive duration inside its recording, and audio that is
    readable, of the length and rate the manifest says, with finite samples. Each recording is
    checked once, however many cuts read it. Features in the manifest are dropped: peerseq
    computes its own (data.features) from the audio."""
    checked: dict[str, str | None] = {}  # recording id -> its fault, None if fine
    keep = []
    for cut in cuts:
        try:
            if not mf.cut_text(cut):
                raise DataError("empty transcript (supervision text)")
            if not (math.isfinite(cut.duration) and cut.duration > 0):
                raise DataError(f"duration {cut.duration}, expected > 0")
            channels = getattr(cut, "channel", None)  # a MonoCut may still name several
            n = len(channels) if isinstance(channels, (list, tuple)) else cut.num_channels
            if n != 1:
                raise DataError(f"{n} channels, expected one (set the cut's channel)")
            recs = _recordings(cut)
            if not recs:
                raise DataError("has no recording (peerseq computes features from the audio)")
            for rec in recs:
                if rec.id not in checked:
                    try:
                        _check_recording(rec, allow_nonlocal)
                        checked[rec.id] = None
                    except DataError as e:
                        checked[rec.id] = str(e)
                if checked[rec.id]:
                    raise DataError(checked[rec.id])
            if cut.has_recording and cut.end > cut.recording.duration + 1e-3:
                raise DataError(
                    f"ends at {cut.end:.3f} s, after its recording ({cut.recording.duration:.3f} s)"
                )
        except DataError as e:
            faults.handle(DataError(f"{path}: cut {cut.id}: {e}"))
            continue
        keep.append(cut.drop_features() if cut.has_features else cut)
    if not keep:
        raise DataError(f"{path}: no usable cut left")
    return CutSet.from_cuts(keep)
