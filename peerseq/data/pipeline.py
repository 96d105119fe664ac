"""A prepared corpus as the training loop and decoding read it: tokenizers, and per split a
sampler and collator, with the split's configured limit applied here and nowhere else."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from peerseq.data.augment import Augmenter
from peerseq.data.batching import (
    Batch,
    FieldSpec,
    SpeechCollator,
    TextCollator,
    filter_cuts,
    iterate,
    speech_sampler,
    text_examples,
    text_sampler,
)
from peerseq.data.config import DataConfig
from peerseq.data.features import feature_dim, precomputed
from peerseq.data.manifest import load_split, load_text_split, read_corpus_json
from peerseq.data.shar import SharSampler
from peerseq.data.tokenizers import load_tokenizer
from peerseq.errors import PeerseqError


class Data:
    """The prepared corpus of an experiment: tokenizers, samplers and collators per split."""

    def __init__(
        self, cfg: DataConfig, seed: int, world_size: int = 1, rank: int = 0, speech: bool = True
    ):
        """speech=False: batch a speech corpus's texts only (no peer reads its audio, e.g. an
        MT model trained on the transcripts and translations of a speech corpus), unless
        cfg.batch_by_frames asks for the speech batches all the same."""
        self.cfg, self.seed, self.world_size, self.rank = cfg, seed, world_size, rank
        self.dir = Path(cfg.corpus)
        if not (self.dir / "corpus.json").is_file():
            raise PeerseqError(
                f"data.corpus: {self.dir} is not a prepared corpus (no corpus.json): prepare it "
                "with `peerseq prepare ... --out DIR`, or let `peerseq train` prepare what "
                "data.prepare describes"
            )
        self.meta = read_corpus_json(self.dir)
        if cfg.batch_by_frames and self.meta["kind"] != "speech":
            raise PeerseqError(
                f"data.batch_by_frames: {self.dir} is a {self.meta['kind']} corpus, with no "
                "frames to batch by; batch_by_frames is for a speech corpus"
            )
        self.speech = self.meta["kind"] == "speech" and (speech or cfg.batch_by_frames)
        self.tokenizers = {n: load_tokenizer(self.dir, f.tokenizer) for n, f in cfg.fields.items()}
        self._text_items: dict[str, list] = {}

    def fields(self, training: bool) -> dict[str, FieldSpec]:
        return {
            n: FieldSpec(f.column, self.tokenizers[n], f.eos, sample=training and f.sample)
            for n, f in self.cfg.fields.items()
        }

    def feature_dim(self) -> int:
        return feature_dim(self.cfg.features)

    def limit(self, split: str) -> int | None:
        """data.limit_{train,dev,test} for the split of that name (None: the whole split);
        training, validation and decoding of a split all read the same first N items."""
        c = self.cfg
        return {
            c.train_split: c.limit_train,
            c.dev_split: c.limit_dev,
            c.test_split: c.limit_test,
        }.get(split)

    def _items(self, split: str, training: bool = False):
        """The split's cuts (lazy) or text examples; text examples are built once per split and
        kept, since building them tokenizes every sentence (for the sampler's token budget).
        Training with augmentation that changes the audio reads the audio, not stored
        features."""
        limit = self.limit(split)
        if not self.speech:
            if split not in self._text_items:
                self._text_items[split] = self._text_examples(split, limit)
            return self._text_items[split]
        audio = training and self.cfg.augment.changes_audio()
        cuts = (
            precomputed(self.dir, split, self.cfg.features)
            if self.cfg.precompute and not audio
            else load_split(self.dir, split)
        )
        return self._selected(split, cuts)

    def _selected(self, split: str, cuts):
        """A split's cuts as training, validation and decoding read them: the length filter
        (training split only) and the split's limit. Lazy, like the cuts."""
        c = self.cfg
        if split == c.train_split:  # paper 000 3.1: long samples leave training only;
            cuts = filter_cuts(cuts, c.filter_max_frames, c.min_seconds, c.max_seconds)
        limit = self.limit(split)  # dev and test are decoded and scored whole
        return cuts.subset(first=limit) if limit else cuts

    def _text_examples(self, split: str, limit: int | None):
        rows = load_text_split(self.dir, split)
        rows = rows[:limit] if limit else rows
        first = next(iter(self.cfg.fields.values()))
        return text_examples(
            rows, FieldSpec(first.column, self.tokenizers[next(iter(self.cfg.fields))])
        )

    def sampler(self, split: str, training: bool):
        if training and self.cfg.shar:
            return self._shar_sampler(split)
        items = self._items(split, training)
        # only training is sharded across ranks; validation and decoding read the whole split
        # (lhotse would otherwise shard by the WORLD_SIZE/RANK that torchrun sets)
        shard = {
            "world_size": self.world_size if training else 1,
            "rank": self.rank if training else 0,
        }
        # lhotse needs at least as many items as buckets; count no further than that (lazy sets)
        buckets = max(1, sum(1 for _ in itertools.islice(items, self.cfg.num_buckets)))
        make, budget = (
            (speech_sampler, self.cfg.max_frames)
            if self.speech
            else (text_sampler, self.cfg.max_tokens)
        )
        return make(
            items,
            budget,
            shuffle=training,
            seed=self.seed,
            num_buckets=buckets,
            drop_last=training and self.cfg.drop_last,
            **shard,
        )

    def _shar_sampler(self, split: str) -> SharSampler:
        """Training batches streamed from this rank's Shar shards (peerseq.data.shar)."""
        if not self.speech:
            raise PeerseqError("data.shar: Shar shards hold speech; this run reads text")
        kind = self.meta.get("shar", {}).get("kind")
        audio_needed = self.cfg.augment.changes_audio()
        if kind not in (None, "audio") and (kind != self.cfg.features or audio_needed):
            need = "audio (speed, volume or noise)" if audio_needed else self.cfg.features
            raise PeerseqError(
                f"data.shar: the shards of {self.dir} hold {kind} features; this run needs "
                f"{need}: prepare them with --shar audio (or that feature kind)"
            )
        c = self.cfg

        def make(cuts):  # world_size 1: the shards are this rank's share already (lhotse would
            # otherwise split them again by the WORLD_SIZE and RANK torchrun sets)
            return speech_sampler(
                cuts, c.max_frames, True, self.seed, c.num_buckets, 1, 0, drop_last=c.drop_last
            )

        prepare = partial(self._selected, split)
        return SharSampler(self.dir, split, make, prepare, self.seed, self.world_size, self.rank)

    def collator(self, training: bool):
        fields = self.fields(training)
        if self.speech:
            augment = self.cfg.augment
            return SpeechCollator(
                fields,
                self.cfg.features,
                self.cfg.cmvn,
                Augmenter(augment) if training and augment.any() else None,
            )
        return TextCollator(fields)

    def batches(self, split: str) -> Iterator[Batch]:
        """Every utterance of a split once (up to its limit), in a fixed order (validation,
        decoding)."""
        return iterate(self.sampler(split, training=False), self.collator(False))
