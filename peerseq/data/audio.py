"""Reading and checking audio files, with one clear error per fault."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from peerseq.errors import DataError


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sampling_rate: int
    num_samples: int
    channels: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate


def _wav_data_shortfall(path: Path) -> int:
    """Bytes missing from a WAV file's data chunk (0 when complete).

    Written by hand because libsndfile silently reads the frames present in a truncated file
    and reports no error; comparing the header's declared size with the bytes on disk is the
    only way to notice.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0  # not RIFF/WAVE: libsndfile judges it
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, csize = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                return max(0, csize - (size - pos - 8))
            pos += 8 + csize + (csize & 1)
    return 0


def check_audio(path: str | Path, channels: int = 1) -> AudioInfo:
    """Open an audio file and check it is usable; raise DataError naming the file otherwise.

    Checks: the file exists and is readable, libsndfile recognises it, a WAV file is not
    truncated, it has samples, it has the expected channel count, and no sample is NaN/inf.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise DataError(f"{path}: not a readable audio file ({e})") from None
    if info.format == "WAV":
        missing = _wav_data_shortfall(path)
        if missing:
            raise DataError(f"{path}: truncated WAV file, {missing} bytes of audio data missing")
    if info.frames == 0:
        raise DataError(f"{path}: empty audio (0 samples)")
    if info.channels != channels:
        raise DataError(f"{path}: expected {channels} channel(s), found {info.channels}")
    samples, _ = sf.read(str(path), dtype="float32", always_2d=True)
    if not np.isfinite(samples).all():
        raise DataError(f"{path}: audio contains NaN or infinite samples")
    return AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels))


# what soundfile (libsndfile) reads, as file name suffixes
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".aiff", ".aif", ".au"}


def audio_files(folder: Path) -> list[Path]:
    """The audio files in a folder and below it, sorted."""
    return sorted(f for f in Path(folder).rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
