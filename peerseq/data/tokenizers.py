"""Tokenizers: sentencepiece unigram for text, characters for CTC.

Saved with the prepared data under tokenizers/ and reloaded by name:
    chars                 the 29-symbol set of paper 003 (blank, space, apostrophe, A-Z)
    spm_{lang}            sentencepiece unigram trained on one language's training text
    spm_{l1}-{l2}         one joint vocabulary for two languages (paper 000's "*" rows)
    spm_asr               sentencepiece on transcripts normalised as `chars` normalises them
                          (upper case, letters, space, apostrophe): CTC targets shorter than
                          characters, scored on the same normalised text (prepare
                          --asr-vocab-size)
Special ids are the same for every text vocabulary: pad=0, bos=1, eos=2, unk=3 (see
peerseq.tokens); the character vocabulary has blank=0.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import string
from array import array
from itertools import accumulate
from pathlib import Path
from typing import Protocol

import sentencepiece as spm

from peerseq.errors import DataError
from peerseq.files import atomic_write_bytes
from peerseq.tokens import BOS, EOS, PAD, UNK


class Tokenizer(Protocol):
    vocab_size: int

    def encode(
        self, text: str, sample: bool = False, rng: random.Random | None = None
    ) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class CharTokenizer:
    """Characters with CTC blank at 0. Text is upper-cased; other characters become spaces.

    The default alphabet is paper 003's: 26 capital letters, space and apostrophe (+ blank = 29).
    """

    def __init__(self, alphabet: str = " '" + string.ascii_uppercase):
        self.alphabet = alphabet
        self.index = {ch: i + 1 for i, ch in enumerate(alphabet)}
        self.vocab_size = len(alphabet) + 1

    def normalize(self, text: str) -> str:
        """The text as the model sees it: upper case, unknown characters dropped to spaces."""
        text = "".join(ch if ch in self.index else " " for ch in text.upper())
        return re.sub(r" +", " ", text).strip()

    def encode(
        self, text: str, sample: bool = False, rng: random.Random | None = None
    ) -> list[int]:
        return [self.index[ch] for ch in self.normalize(text)]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.alphabet[i - 1] for i in ids if 0 < i < self.vocab_size)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"type": "chars", "alphabet": self.alphabet}))


class SentencePieceTokenizer:
    """A sentencepiece model; `sample=True` draws a segmentation (subword regularisation, Kudo
    2018) for training, `sample=False` gives the deterministic best one for evaluation.

    Sampling is Kudo's l-best form: one of the `nbest` best segmentations, drawn with
    probability proportional to P(x)^alpha by `rng` (a random.Random; Python's `random` when
    None). sentencepiece's own sampler is not used because its generator is thread-local and
    cannot be re-seeded or saved, so a resumed run could not draw the same segmentations; the
    training loop gives every batch its own generator, seeded by (seed, epoch, batch index).
    """

    # sentences whose n-best list is kept (see _candidates): about 5 kB each at nbest 64
    CACHE_SENTENCES = 200_000

    def __init__(self, model_proto: bytes, alpha: float = 0.1, nbest: int = 64):
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.model_proto = model_proto
        self.alpha, self.nbest = alpha, nbest
        self.vocab_size = self.sp.get_piece_size()
        self.piece_scores = [self.sp.get_score(i) for i in range(self.vocab_size)]
        self._nbest: dict[str, tuple[array, array, array]] = {}

    def encode(
        self, text: str, sample: bool = False, rng: random.Random | None = None
    ) -> list[int]:
        if not sample:
            return self.sp.encode(text)
        ids, starts, cum_weights = self._candidates(text)
        if len(cum_weights) < 2:
            return ids.tolist()
        # choices over the candidates' indices with their cumulative weights draws the same
        # candidate from the same generator state as choices(candidates, weights=weights)
        i = (rng or random).choices(range(len(cum_weights)), cum_weights=cum_weights)[0]
        return ids[starts[i] : starts[i + 1]].tolist()

    def _candidates(self, text: str) -> tuple[array, array, array]:
        """(the n-best segmentations' ids concatenated, where each starts (and the end), their
        cumulative sampling weights P(x)^alpha / P(best)^alpha). Kept per sentence: the n-best
        search and its scoring cost a tenth of an MT training step when done for every batch,
        and a sentence's list never changes."""
        if (hit := self._nbest.get(text)) is not None:
            return hit
        candidates = self.sp.nbest_encode_as_ids(text, self.nbest) or [self.sp.encode(text)]
        out = (
            array("i", [i for c in candidates for i in c]),
            array("i", [0, *accumulate(len(c) for c in candidates)]),
            array("d", accumulate(self.weights(candidates))),
        )
        if len(self._nbest) < self.CACHE_SENTENCES:
            self._nbest[text] = out
        return out

    def weights(self, candidates: list[list[int]]) -> list[float]:
        """Sampling weights of segmentations, P(x)^alpha / P(best)^alpha."""
        scores = [sum(self.piece_scores[i] for i in c) for c in candidates]  # log P(x)
        top = max(scores)
        return [math.exp(self.alpha * (s - top)) for s in scores]

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if i > 3])

    def save(self, path: Path) -> None:
        path.write_bytes(self.model_proto)


class NormalizedSentencePiece(SentencePieceTokenizer):
    """Sentencepiece over text normalised as CharTokenizer normalises it: what ASR scores
    (WER on upper-case words without punctuation, as the character targets), with targets a
    third of the characters' length. Fast synthetic speech (multi30k-speech, 19 characters a
    second) has more characters than a x4-subsampled encoder has frames (25 a second), so
    CTC on characters cannot fit 6% of its utterances; on these pieces it fits them all."""

    def __init__(self, model_proto: bytes, alpha: float = 0.1, nbest: int = 64):
        super().__init__(model_proto, alpha, nbest)
        self.normalize = CharTokenizer().normalize

    def encode(
        self, text: str, sample: bool = False, rng: random.Random | None = None
    ) -> list[int]:
        return super().encode(self.normalize(text), sample, rng)

    def save(self, path: Path) -> None:
        """Two files: the sentencepiece model beside a JSON that says it is normalised."""
        # atomic: two runs that both find the vocabulary missing both write it (prepare_corpus)
        atomic_write_bytes(path.with_suffix(".spm"), self.model_proto)
        spec = {"type": "normalized-sentencepiece", "model": path.stem + ".spm"}
        atomic_write_bytes(path, json.dumps(spec).encode())


def kudo_sample(tok: SentencePieceTokenizer, text: str, rng: random.Random) -> list[int]:
    """Kudo's l-best sampling written out plainly: the n-best search and its scoring for every
    draw, one candidate chosen by its weight. What SentencePieceTokenizer.encode(sample=True)
    draws from the same generator state with its kept lists and cumulative weights: the
    reference for its test and for bench/subword_sampling.py."""
    candidates = tok.sp.nbest_encode_as_ids(text, tok.nbest)
    if len(candidates) < 2:
        return candidates[0] if candidates else tok.sp.encode(text)
    return rng.choices(candidates, weights=tok.weights(candidates))[0]


def train_sentencepiece(
    sentences: list[str], vocab_size: int = 8000, seed: int = 1
) -> SentencePieceTokenizer:
    """Train a unigram model. vocab_size is a soft limit (hard_vocab_limit=False): a corpus too
    small for it gets the largest vocabulary it supports instead of an error."""
    if not sentences:
        raise DataError("cannot train a sentencepiece model on no sentences")
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    # every character, the word-boundary mark and the 4 specials
    chars = len({ch for s in sentences for ch in s if not ch.isspace()})
    if vocab_size < chars + 5:  # sentencepiece's own error is an INTERNAL RuntimeError
        raise DataError(
            f"--vocab-size {vocab_size}: the text has {chars} distinct characters, so a "
            f"vocabulary needs at least {chars + 5} entries"
        )
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=PAD,
        bos_id=BOS,
        eos_id=EOS,
        unk_id=UNK,
        num_threads=1,  # one thread: the trained model is then the same on every machine
        minloglevel=2,
    )
    return SentencePieceTokenizer(model.getvalue())


def train_normalized_sentencepiece(
    texts: list[str], vocab_size: int, seed: int = 1
) -> NormalizedSentencePiece:
    """A unigram model of the texts as CharTokenizer normalises them (NormalizedSentencePiece)."""
    norm = CharTokenizer().normalize
    return NormalizedSentencePiece(
        train_sentencepiece([norm(t) for t in texts], vocab_size, seed).model_proto
    )


def save_tokenizer(tok: CharTokenizer | SentencePieceTokenizer, prepared: Path, name: str) -> None:
    folder = Path(prepared) / "tokenizers"
    folder.mkdir(parents=True, exist_ok=True)
    plain_spm = isinstance(tok, SentencePieceTokenizer) and not hasattr(tok, "normalize")
    tok.save(folder / f"{name}{'.model' if plain_spm else '.json'}")


def load_tokenizer(prepared: str | Path, name: str) -> CharTokenizer | SentencePieceTokenizer:
    """Reload a tokenizer saved with a prepared corpus, by name (e.g. 'chars', 'spm_de')."""
    folder = Path(prepared) / "tokenizers"
    if (folder / f"{name}.model").is_file():
        return SentencePieceTokenizer((folder / f"{name}.model").read_bytes())
    if (folder / f"{name}.json").is_file():
        spec = json.loads((folder / f"{name}.json").read_text())
        if spec.get("type") == "normalized-sentencepiece":
            return NormalizedSentencePiece((folder / spec["model"]).read_bytes())
        return CharTokenizer(spec["alphabet"])
    have = sorted({p.stem for p in folder.glob("*")}) if folder.is_dir() else []
    raise DataError(f"{prepared}: no tokenizer '{name}' (have: {', '.join(have) or 'none'})")
