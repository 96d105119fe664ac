"""Multi30k with English speech synthesised by eSpeak NG: an ST corpus (audio, transcript,
translations) made from real parallel text.

Each sentence gets a voice x variant x rate x pitch drawn from the seed. Audio is resampled to
16 kHz and stored as 16-bit FLAC. eSpeak NG keeps internal state from one utterance to the next
(pitch flutter and noise), so output depends on what a process synthesised before: utterances
are made in fixed chunks, each in a fresh worker process, which makes the result byte-identical
for the same seed whatever the number of workers (and --limit N gives a prefix of the full set).
"""

from __future__ import annotations

import multiprocessing as mp
import random
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import AudioSource, CutSet, Recording, SupervisionSegment
from scipy.signal import resample_poly

from peerseq.data.manifest import SAMPLING_RATE, cuts_from

CHUNK = 200


def voice_for(seed: int, uid: str, pool=None):
    from peerseq.data.synth import ALL, draw_voice

    return draw_voice(random.Random(f"multi30k-speech/{seed}/{uid}"), pool or ALL)


def _synth_chunk(job: tuple[list[tuple[str, str]], str, int, tuple]) -> list[tuple[str, int, dict]]:
    """Worker: synthesise (id, text) pairs into folder; returns (id, num_samples, voice)."""
    from peerseq.data.synth import ESpeak  # loaded here: each chunk's process starts fresh

    items, folder, seed, pool = job
    engine = ESpeak()
    g = np.gcd(SAMPLING_RATE, engine.sampling_rate)
    up, down = SAMPLING_RATE // g, engine.sampling_rate // g
    out = []
    for uid, text in items:
        params = voice_for(seed, uid, pool)
        wav = engine.synthesize(text, params).astype(np.float32) / 32768.0
        wav = np.clip(resample_poly(wav, up, down), -1.0, 32767 / 32768)
        pcm = np.round(wav * 32768.0).astype(np.int16)
        sf.write(f"{folder}/{uid}.flac", pcm, SAMPLING_RATE, format="FLAC", subtype="PCM_16")
        out.append((uid, len(pcm), params.__dict__))
    return out


def synthesize(
    rows: list[dict],
    audio_dir: Path,
    seed: int,
    num_workers: int = 2,
    final_dir: Path | None = None,
    pool: tuple | None = None,
) -> CutSet:
    """One cut per sentence, carrying its transcript (en) and translations (custom de/fr),
    spoken by voices drawn from pool (synth.Pool: accents, variants; default all of them).

    Audio is written to audio_dir; the manifest points at final_dir (default audio_dir), where
    the files will be once the atomic rename of the output directory is done.
    """
    audio_dir.mkdir(parents=True, exist_ok=True)
    final_dir = Path(final_dir or audio_dir).resolve()
    items = [(r["id"], r["en"]) for r in rows]
    jobs = [(items[i : i + CHUNK], str(audio_dir), seed, pool) for i in range(0, len(items), CHUNK)]
    # fork: workers inherit no eSpeak state because this process never loads the library;
    # maxtasksperchild=1 gives every chunk a fresh process (see the module docstring).
    ctx = mp.get_context("fork")
    with ctx.Pool(num_workers, maxtasksperchild=1) as pool:
        done = [x for chunk in pool.imap(_synth_chunk, jobs) for x in chunk]
    by_id = {r["id"]: r for r in rows}
    recs, sups = [], []
    for uid, n, voice in done:
        row = by_id[uid]
        recs.append(
            Recording(
                id=uid,
                sources=[AudioSource("file", [0], str(final_dir / f"{uid}.flac"))],
                sampling_rate=SAMPLING_RATE,
                num_samples=n,
                duration=n / SAMPLING_RATE,
            )
        )
        sups.append(
            SupervisionSegment(
                id=uid,
                recording_id=uid,
                start=0.0,
                duration=n / SAMPLING_RATE,
                text=row["en"],
                language="en",
                speaker=f"{voice['voice']}+{voice['variant']}",
                custom={k: v for k, v in row.items() if k not in ("id", "en")} | {"voice": voice},
            )
        )
    return cuts_from(recs, sups)
