"""From an Experiment config to the things the loop uses: data pipeline, peers, optimisers.

Models are found in an explicit table (peerseq.models.presets and the paper-003 builders), never
by side-effect registration.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from peerseq.config import from_dict
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
from peerseq.data.features import feature_dim, precomputed
from peerseq.data.manifest import load_split, load_text_split, read_corpus_json
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.tokenizers import load_tokenizer
from peerseq.engine.link import Link
from peerseq.engine.peer import Peer, is_seq2seq, unwrap
from peerseq.engine.schedules import make_schedule
from peerseq.errors import PeerseqError
from peerseq.experiment import DataConfig, Experiment, LinkConfig, ModelConfig, OptimConfig
from peerseq.models import presets
from peerseq.models.asr_paper003 import build_paper003
from peerseq.models.em_auxiliary import build_em_network
from peerseq.models.loading import load_encoder
from peerseq.rundir.checkpoint import peer_weights_file
from peerseq.rundir.weights import load_weights

PAPER003 = ("teacher_a", "teacher_b", "student_a", "student_b")


class Data:
    """The prepared corpus of an experiment: tokenizers, samplers and collators per split."""

    def __init__(
        self, cfg: DataConfig, seed: int, world_size: int = 1, rank: int = 0, speech: bool = True
    ):
        """speech=False: batch a speech corpus's texts only (no peer reads its audio, e.g. an
        MT model trained on the transcripts and translations of a speech corpus)."""
        self.cfg, self.seed, self.world_size, self.rank = cfg, seed, world_size, rank
        self.dir = Path(cfg.corpus)
        if not (self.dir / "corpus.json").is_file():
            if not cfg.prepare:
                raise PeerseqError(
                    f"data.corpus: {self.dir} is not a prepared corpus and data.prepare is empty"
                )
            args = from_dict(PrepareArgs, {"out": self.dir, **cfg.prepare}, source="data.prepare")
            prepare(args)
        self.meta = read_corpus_json(self.dir)
        self.speech = self.meta["kind"] == "speech" and speech
        self.tokenizers = {n: load_tokenizer(self.dir, f.tokenizer) for n, f in cfg.fields.items()}
        self._text_items: dict[tuple, list] = {}

    def fields(self, training: bool) -> dict[str, FieldSpec]:
        return {
            n: FieldSpec(f.column, self.tokenizers[n], f.eos, sample=training and f.sample)
            for n, f in self.cfg.fields.items()
        }

    def feature_dim(self) -> int:
        return feature_dim(self.cfg.features)

    def _items(self, split: str, limit: int | None):
        """The split's cuts (lazy) or text examples; text examples are built once per split and
        kept, since building them tokenizes every sentence (for the sampler's token budget)."""
        if not self.speech:
            key = (split, limit)
            if key not in self._text_items:
                self._text_items[key] = self._text_examples(split, limit)
            return self._text_items[key]
        cuts = (
            precomputed(self.dir, split, self.cfg.features)
            if self.cfg.precompute
            else load_split(self.dir, split)
        )
        if split == self.cfg.train_split:  # paper 000 3.1: long samples leave training only;
            cuts = filter_cuts(  # dev and test are decoded and scored whole
                cuts, self.cfg.filter_max_frames, self.cfg.min_seconds, self.cfg.max_seconds
            )
        return cuts.subset(first=limit) if limit else cuts

    def _text_examples(self, split: str, limit: int | None):
        rows = load_text_split(self.dir, split)
        rows = rows[:limit] if limit else rows
        first = next(iter(self.cfg.fields.values()))
        return text_examples(
            rows, FieldSpec(first.column, self.tokenizers[next(iter(self.cfg.fields))])
        )

    def sampler(self, split: str, training: bool, limit: int | None = None):
        items = self._items(split, limit)
        # only training is sharded across ranks; validation and decoding read the whole split
        # (lhotse would otherwise shard by the WORLD_SIZE/RANK that torchrun sets)
        shard = {
            "world_size": self.world_size if training else 1,
            "rank": self.rank if training else 0,
        }
        # lhotse needs at least as many items as buckets; count no further than that (lazy sets)
        buckets = max(1, sum(1 for _ in itertools.islice(items, self.cfg.num_buckets)))
        if self.speech:
            return speech_sampler(
                items,
                self.cfg.max_frames,
                shuffle=training,
                seed=self.seed,
                num_buckets=buckets,
                **shard,
            )
        return text_sampler(
            items,
            self.cfg.max_tokens,
            shuffle=training,
            seed=self.seed,
            num_buckets=buckets,
            **shard,
        )

    def collator(self, training: bool):
        fields = self.fields(training)
        if self.speech:
            return SpeechCollator(fields, self.cfg.features, self.cfg.cmvn)
        return TextCollator(fields)

    def batches(self, split: str, limit: int | None = None) -> Iterator[Batch]:
        """Every utterance of a split once, in a fixed order (validation, decoding)."""
        return iterate(self.sampler(split, training=False, limit=limit), self.collator(False))


def reads_speech(exp: Experiment) -> bool:
    """Whether any peer reads audio; if none does, batches carry text only."""
    return any(pc.reads == "speech" for pc in exp.peers.values())


def build_model(
    cfg: ModelConfig, data: Data, reads: str, predicts: str, built: dict[str, Peer]
) -> nn.Module:
    vocab = data.tokenizers[predicts].vocab_size
    if cfg.same_as:
        if cfg.same_as not in built:
            raise PeerseqError(f"model.same_as: no earlier peer '{cfg.same_as}'")
        return built[cfg.same_as].model
    if cfg.preset == "em_network":
        upstream = reads[1:]
        if not reads.startswith("@") or upstream not in built:
            raise PeerseqError(f"em_network reads '@peer' of an earlier peer, got reads={reads!r}")
        model = build_em_network(
            unwrap(built[upstream].model), vocab, cfg.size, cfg.mask_prob, **cfg.overrides
        )
    elif cfg.preset in PAPER003:
        model = build_paper003(cfg.preset, cfg.size, data.feature_dim(), vocab, **cfg.overrides)
    elif reads == "speech":
        model = presets.build(
            cfg.preset, cfg.size, src_feats=data.feature_dim(), vocab=vocab, **cfg.overrides
        )
    else:
        src_vocab = data.tokenizers[reads].vocab_size
        model = presets.build(
            cfg.preset, cfg.size, vocab=vocab, src_vocab=src_vocab, **cfg.overrides
        )
    for attr, other in cfg.share.items():
        if other not in built or not hasattr(unwrap(built[other].model), attr):
            raise PeerseqError(f"model.share: no submodule '{attr}' in an earlier peer '{other}'")
        mine, theirs = getattr(model, attr, None), getattr(unwrap(built[other].model), attr)
        if mine is not None and _shapes(mine) != _shapes(theirs):
            raise PeerseqError(f"model.share: '{attr}' of '{other}' has other shapes than ours")
        setattr(model, attr, theirs)
    if cfg.init_from:
        model.load_state_dict(load_weights(peer_weights_file(cfg.init_from)))
    parts = (
        ("init_encoder_from", "encoder.", "frontend."),
        ("init_decoder_from", "decoder.", "output_layer."),  # a tied output layer: no keys
    )
    for key, prefix, second in parts:
        spec = getattr(cfg, key)
        if spec:
            try:
                weights = load_weights(peer_weights_file(spec, f"model.{key}"))
                load_encoder(model, weights, prefix=prefix, frontend_prefix=second)
            except ValueError as e:
                raise PeerseqError(f"model.{key} '{spec}': {e}") from None
    return model


def _shapes(module: nn.Module) -> list[tuple]:
    return [tuple(p.shape) for p in module.parameters()]


def build_peers(exp: Experiment, data: Data) -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    for name, pc in exp.peers.items():
        for f in (pc.reads, pc.predicts, pc.reads_also):
            if f not in (None, "speech") and not f.startswith("@") and f not in data.tokenizers:
                raise PeerseqError(f"peers.{name}: field '{f}' is not in data.fields")
        try:
            model = build_model(pc.model, data, pc.reads, pc.predicts, peers)
        except ValueError as e:  # presets: unknown preset, size or override field
            raise PeerseqError(f"peers.{name}.model: {e}") from None
        peers[name] = Peer(
            name,
            model,
            pc.reads,
            pc.predicts,
            pc.loss,
            pc.loss_weight,
            pc.label_smoothing,
            pc.trainable,
            pc.reads_also,
            pc.train_on_hyps_of,
        )
    return peers


def check_method(exp: Experiment, peers: dict[str, Peer]) -> None:
    """Combinations the engine does not support, refused before training starts."""
    readers = [n for n, p in peers.items() if p.upstream]
    if exp.train.update == "alternating" and readers:
        raise PeerseqError(
            f"train.update: alternating cannot train peers that read another peer's output "
            f"({', '.join(readers)}): their graphs share parameters; use joint"
        )
    for i, lc in enumerate(exp.links):
        if lc.kind == "seqkd" and is_seq2seq(peers[lc.b].model):
            raise PeerseqError(
                f"links.{i}: seqkd to an encoder-decoder student ({lc.b}) is not supported yet: "
                "its output is teacher-forced on the reference, not on the hypotheses"
            )
        if lc.kind == "seqkd" and not lc.cache and is_seq2seq(peers[lc.a].model):
            raise PeerseqError(f"links.{i}: online seqkd needs a CTC teacher; set cache: true")
    for name, pc in exp.peers.items():
        if pc.model.same_as and not pc.trainable:
            raise PeerseqError(
                f"peers.{name}: a same_as peer is {pc.model.same_as}'s model; freezing it would "
                f"freeze {pc.model.same_as} too"
            )
        if (pc.model.same_as or pc.model.share) and exp.train.update == "alternating":
            raise PeerseqError(
                f"peers.{name} shares parameters with another peer: alternating updates would "
                "step them on one peer's turn with gradients from another's; use joint"
            )
        teacher = pc.train_on_hyps_of
        if teacher is None:
            continue
        if teacher in exp.peers and exp.peers[teacher].predicts != pc.predicts:
            raise PeerseqError(
                f"peers.{name}.train_on_hyps_of: '{teacher}' predicts "
                f"'{exp.peers[teacher].predicts}', {name} predicts '{pc.predicts}': the "
                "hypotheses must be in the student's vocabulary"
            )
        if teacher not in peers or peers[teacher].trainable:
            raise PeerseqError(
                f"peers.{name}.train_on_hyps_of: '{teacher}' must be a frozen peer "
                "(trainable: false) whose hypotheses are decoded once"
            )
        if not is_seq2seq(peers[name].model) or not is_seq2seq(peers[teacher].model):
            raise PeerseqError(
                f"peers.{name}.train_on_hyps_of: student and teacher must be encoder-decoders "
                "(for CTC students use a seqkd link)"
            )
    shared = [n for n, pc in exp.peers.items() if pc.model.share or pc.model.same_as]
    if shared and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise PeerseqError(
            f"peers {', '.join(shared)} share modules: not supported under DDP yet (each peer's "
            "DDP wrapper would all-reduce the shared gradients again)"
        )
    name = exp.train.early_stop_peer
    if name is not None:
        if name not in peers:
            raise PeerseqError(f"train.early_stop_peer: no peer '{name}'")
        if exp.peers[name].decode.metric == "none" or peers[name].upstream:
            raise PeerseqError(f"train.early_stop_peer: peer '{name}' is not decoded")
    elif exp.train.patience is not None:
        raise PeerseqError("train.patience needs train.early_stop_peer")


def build_links(exp: Experiment) -> list[Link]:
    links = []
    for i, lc in enumerate(exp.links):
        for side in (lc.a, lc.b):
            if side not in exp.peers:
                raise PeerseqError(f"links.{i}: unknown peer '{side}' (peers: {list(exp.peers)})")
        links.append(Link(lc.a, lc.b, lc.kind, schedule(lc), lc.temperature, lc.grad, lc.name))
    return links


def schedule(lc: LinkConfig):
    """A link's weight schedule, through the one table in peerseq.engine.schedules."""
    params = {"cyclical": {"R": lc.R, "C": lc.C}, "warmup": {"steps": lc.warmup}}
    return make_schedule({"type": lc.schedule, "value": lc.weight, **params.get(lc.schedule, {})})


@dataclass
class LRLambda:
    """LR multiplier as a pure function of the scheduler's step count (picklable, unlike a
    lambda, so scheduler state round-trips through checkpoints)."""

    kind: str
    warmup: int

    def __call__(self, step: int) -> float:
        if self.kind == "inverse_sqrt":  # fairseq's: linear warm-up, then 1/sqrt(step)
            step = step + 1
            w = max(1, self.warmup)
            return step / w if step < w else math.sqrt(w / step)
        return 1.0


def build_optimizer(params: list[nn.Parameter], cfg: OptimConfig):
    if cfg.name == "sgd":
        opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    kind = "constant" if cfg.schedule == "epoch_decay" else cfg.schedule
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, LRLambda(kind, cfg.warmup))
