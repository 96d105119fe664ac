"""Batches: one Batch type for every task, bounded by frames or tokens, length-bucketed.

A Batch carries whatever its peers read: speech features, transcript tokens (ASR), source
tokens (MT input) and target tokens (translation), all for the same utterances, so one batch
feeds an ST peer and an MT peer together. Which text goes where is a FieldSpec.
Sampling is lhotse's DynamicBucketingSampler (speech: by duration = frames x 10 ms; text: by
tokens through lhotse's TextExample and TokenConstraint), deterministic for a seed.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.cut.text import TextExample
from lhotse.dataset import DynamicBucketingSampler
from lhotse.dataset.collation import collate_features
from lhotse.dataset.input_strategies import OnTheFlyFeatures
from lhotse.dataset.sampling.base import TokenConstraint

from peerseq.data.augment import Augmenter
from peerseq.data.features import FRAME_SHIFT, extractor, utterance_cmvn
from peerseq.data.manifest import text_row
from peerseq.data.tokenizers import Tokenizer
from peerseq.tokens import EOS

TEXT_FIELDS = ("transcript", "source", "target")


@dataclass
class FieldSpec:
    """Which text column fills a token field, with which tokenizer.

    column: a key of the item's text row ("transcript", "en", "de", ...).
    add_eos: append EOS (decoder targets); CTC transcripts have none.
    """

    column: str
    tokenizer: Tokenizer
    add_eos: bool = False
    sample: bool = False  # draw a sentencepiece segmentation (subword regularisation; training)


@dataclass
class Batch:
    """One mini-batch. Tensors are padded with 0; lengths give the valid extent.

    speech: [B, T, F] features, speech_lengths [B]
    transcript / source / target: [B, U] token ids, *_lengths [B]
    texts: the raw strings of every column ({"transcript": [...], "de": [...]}), for scoring.
    """

    ids: list[str]
    speech: torch.Tensor | None = None
    speech_lengths: torch.Tensor | None = None
    tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    lengths: dict[str, torch.Tensor] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)
    # a frozen teacher's k-best transcripts per utterance, {"hyp:teacher": [B][k][U_k]} (seqKD
    # with k > 1 reads them; batch.tokens["hyp:teacher"] holds the padded 1-best)
    kbest: dict[str, list[list[list[int]]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str) -> Batch:
        move = lambda d: {k: v.to(device, non_blocking=True) for k, v in d.items()}
        speech = None if self.speech is None else self.speech.to(device, non_blocking=True)
        lens = None if self.speech_lengths is None else self.speech_lengths.to(device)
        return Batch(
            self.ids, speech, lens, move(self.tokens), move(self.lengths), self.texts, self.kbest
        )


def pad_tokens(seqs: list[list[int]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """list of B token lists -> ([B, U] padded, [B] lengths)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), max(int(lengths.max()), 1) if seqs else 1), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def _tokenize(
    rows: list[dict], fields: dict[str, FieldSpec], batch: Batch, rng: random.Random | None
) -> None:
    for name, spec in fields.items():
        if any(spec.column not in r for r in rows):
            continue  # a split without this column (e.g. a test set without translations)
        texts = [r[spec.column] for r in rows]
        seqs = [spec.tokenizer.encode(t, sample=spec.sample, rng=rng) for t in texts]
        if spec.add_eos:
            seqs = [s + [EOS] for s in seqs]
        batch.tokens[name], batch.lengths[name] = pad_tokens(seqs)
    for key in rows[0] if rows else ():
        if key != "id":
            batch.texts[key] = [r.get(key, "") for r in rows]


class SpeechCollator:
    """CutSet -> Batch: features (precomputed if the cuts have them, else on the fly with
    lhotse's extractor), optional per-utterance CMVN, and token fields (a FieldSpec with
    sample=True draws sentencepiece segmentations: subword regularisation for training, from
    `rng`, the batch's own generator).
    """

    def __init__(
        self,
        fields: dict[str, FieldSpec],
        features: str = "fbank80",
        cmvn: bool = True,
        augment: Augmenter | None = None,
    ):
        """augment: training batches' augmentation (drawn from the batch's rng)."""
        self.fields, self.cmvn, self.augment = fields, cmvn, augment
        self.on_the_fly = OnTheFlyFeatures(extractor(features))

    def features(self, cuts: CutSet) -> tuple[torch.Tensor, torch.Tensor]:
        """cuts (in this order) -> features [B, T, F] float32 (stored ones, else computed from
        the audio), CMVN'd if asked, and their lengths [B]. Also what inference runs on files."""
        if all(c.has_features for c in cuts):
            feats, lens = collate_features(cuts)
        else:
            feats, lens = self.on_the_fly(cuts)
        feats = feats.float()
        return (utterance_cmvn(feats, lens) if self.cmvn else feats), lens

    def __call__(self, cuts: CutSet, rng: random.Random | None = None) -> Batch:
        if self.augment is not None:
            rng = rng or random.Random(0)
            cuts = self.augment.cuts(cuts, rng)
        # Sort by duration so the ragged batch packs; lhotse's collation pads to the longest.
        cuts = cuts.sort_by_duration(ascending=False)
        feats, lens = self.features(cuts)
        if self.augment is not None:
            feats = self.augment.features(feats, lens, rng)
        batch = Batch(ids=[c.id for c in cuts], speech=feats, speech_lengths=lens)
        _tokenize([text_row(c) for c in cuts], self.fields, batch, rng)
        return batch


class TextCollator:
    """list of TextExample (from text_examples) -> Batch with token fields only."""

    def __init__(self, fields: dict[str, FieldSpec]):
        self.fields = fields

    def __call__(self, examples: list[TextExample], rng: random.Random | None = None) -> Batch:
        rows = [e.custom["row"] for e in examples]
        batch = Batch(ids=[r["id"] for r in rows])
        _tokenize(rows, self.fields, batch, rng)
        return batch


def filter_cuts(
    cuts: CutSet,
    max_frames: int | None = 3000,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
) -> CutSet:
    """Drop cuts longer than max_frames (paper 000: 3000) or outside [min_seconds, max_seconds]
    (paper 003: 1-15 s). Lazy, like the CutSet it filters."""
    lo = min_seconds or 0.0
    hi = min(max_seconds or float("inf"), (max_frames or float("inf")) * FRAME_SHIFT)
    # a partial of a module-level function, not a lambda: lhotse's lazy sets must pickle
    return cuts.filter(partial(_duration_within, lo=lo, hi=hi))


def _duration_within(cut: Cut, lo: float, hi: float) -> bool:
    return lo <= cut.duration <= hi


def text_examples(rows: list[dict], length_of: FieldSpec) -> list[TextExample]:
    """Wrap text rows as lhotse TextExamples whose length (for the token budget) is the
    tokenized length of one column."""
    return [
        TextExample(
            text=r[length_of.column],
            tokens=np.zeros(len(length_of.tokenizer.encode(r[length_of.column])) + 1, np.int8),
            custom={"row": r},
        )
        for r in rows
    ]


def speech_sampler(
    cuts: CutSet,
    max_frames: int,
    shuffle: bool,
    seed: int,
    num_buckets: int = 10,
    world_size: int | None = None,
    rank: int | None = None,
    drop_last: bool = False,
) -> DynamicBucketingSampler:
    """Batches of at most max_frames feature frames (padding included), length-bucketed;
    drop_last: without the unfilled batches that emptying buckets leave at an epoch's end."""
    with _eager_ok():
        return DynamicBucketingSampler(
            cuts,
            max_duration=max_frames * FRAME_SHIFT,
            shuffle=shuffle,
            seed=seed,
            num_buckets=num_buckets,
            world_size=world_size,
            rank=rank,
            drop_last=drop_last,
        )


def text_sampler(
    examples: list[TextExample],
    max_tokens: int,
    shuffle: bool,
    seed: int,
    num_buckets: int = 10,
    world_size: int | None = None,
    rank: int | None = None,
    drop_last: bool = False,
) -> DynamicBucketingSampler:
    """Batches of at most max_tokens tokens (padding included), length-bucketed."""
    with _eager_ok():
        return DynamicBucketingSampler(
            examples,
            constraint=TokenConstraint(max_tokens=max_tokens, quadratic_length=None),
            shuffle=shuffle,
            seed=seed,
            num_buckets=num_buckets,
            world_size=world_size,
            rank=rank,
            drop_last=drop_last,
        )


@contextmanager
def _eager_ok() -> Iterator[None]:
    """lhotse warns when its sampler gets an in-memory set. Ours are in memory on purpose: text
    examples (tokenized once), and a split's first N cuts (data.limit_*), small by design."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*eagerly read CutSet")
        yield


def iterate(sampler, collate) -> Iterator[Batch]:
    """Collated batches in the sampler's order (in this process: features are cheap here)."""
    for items in sampler:
        yield collate(items)


__all__ = [
    "Batch",
    "FieldSpec",
    "SpeechCollator",
    "TextCollator",
    "Cut",
    "filter_cuts",
    "iterate",
    "pad_tokens",
    "speech_sampler",
    "text_examples",
    "text_sampler",
    "TEXT_FIELDS",
]
