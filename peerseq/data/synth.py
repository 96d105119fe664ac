"""English speech from text with eSpeak NG, driven through ctypes.

The engine and its voice data come inside the `espeakng-loader` wheel (no system install).
Written against the C API directly (espeak_Initialize, espeak_SetSynthCallback, espeak_Synth)
because no maintained Python binding ships the library: the loader only provides the .so.
Synthesis is deterministic for given text, voice and parameters, so a seed that draws the
voice parameters gives byte-identical audio.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
ESPEAK_RATE, ESPEAK_PITCH = 1, 3

# eSpeak NG names British English "en" (its language code is en-gb).
VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
# Variants with "breath" (f2, f3, f5) or klatt synthesis add noise that is not reproducible
# from one process to the next (measured: other bytes on every run), so they are left out.
VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + (
    "f1",
    "f4",
    "Andrea",
    "Annie",
    "anika",
    "belinda",
    "linda",
    "steph",
)

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class VoiceParams:
    voice: str
    variant: str
    rate: int  # words per minute
    pitch: int  # 0-100

    @property
    def name(self) -> str:
        return f"{self.voice}+{self.variant}"


# the voices one split may use: (accents, variants); every pair of the two can speak
Pool = tuple[tuple[str, ...], tuple[str, ...]]
ALL: Pool = (VOICES, VARIANTS)


def draw_voice(rng: random.Random, pool: Pool = ALL) -> VoiceParams:
    """Voice x variant x rate x pitch, drawn from rng (one draw per utterance) and the pool."""
    voices, variants = pool
    return VoiceParams(
        rng.choice(voices), rng.choice(variants), rng.randint(130, 200), rng.randint(30, 70)
    )


def held_out_pools(names: list[str]) -> tuple[Pool, Pool]:
    """(seen, unseen) voice pools that share no voice, from names that are accents (VOICES)
    or variants (VARIANTS): the unseen pool speaks only with the named ones (all accents, or
    all variants, where none of that kind is named); the seen pool never uses a named one."""
    unknown = [n for n in names if n not in VOICES + VARIANTS]
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not an eSpeak accent ({', '.join(VOICES)}) "
            f"or variant ({', '.join(VARIANTS)})"
        )
    out_voices = tuple(v for v in VOICES if v in names)
    out_variants = tuple(v for v in VARIANTS if v in names)
    seen = (
        tuple(v for v in VOICES if v not in out_voices),
        tuple(v for v in VARIANTS if v not in out_variants),
    )
    if not seen[0] or not seen[1]:
        raise ValueError(f"{', '.join(names)}: nothing would be left to speak the other splits")
    return seen, (out_voices or VOICES, out_variants or VARIANTS)


class ESpeak:
    """One eSpeak NG engine in this process (the C library keeps global state: one per process)."""

    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"))
        data = espeakng_loader.get_data_path().encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {data.decode()})")
        self.sampling_rate = rate
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # kept on self so it is not garbage-collected
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]

    def synthesize(self, text: str, params: VoiceParams) -> np.ndarray:
        """int16 samples [N] at self.sampling_rate (22,050 Hz for eSpeak NG)."""
        if self.lib.espeak_SetVoiceByName(params.name.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {params.name}")
        self.lib.espeak_SetParameter(ESPEAK_RATE, params.rate, 0)
        self.lib.espeak_SetParameter(ESPEAK_PITCH, params.pitch, 0)
        self._chunks = []
        # eSpeak NG draws noise from libc's rand(); a forked process inherits its parent's
        # generator state, so seed it here for the same samples in every process.
        self.libc.srand(params.rate * 101 + params.pitch)
        buf = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(
            buf, len(buf), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
        )
        if err != 0:
            raise RuntimeError(f"eSpeak NG failed on {text!r} (error {err})")
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
