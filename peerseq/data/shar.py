"""Corpora larger than a disk or a machine: lhotse Shar shards, written by `prepare --shar` and
streamed by training (`data.shar: true`).

A split's shards are `shar/{split}/cuts.NNNNNN.jsonl.gz` with `recording.NNNNNN.tar` (FLAC
audio) or `features.NNNNNN.tar` (lilcom features of one kind); they are read sequentially, a
shard at a time, and can sit anywhere lhotse's I/O reaches once copied there. In training each
epoch deals the shards to the ranks: a seeded shuffle of the shard list (seed, epoch), then
rank r reads every world_size-th shard from the r-th, and nothing else. Batches are the ones
lhotse's DynamicBucketingSampler makes from that stream, so they are the same for a seed. Ranks
hold different amounts of data, but a DDP step needs every rank: each epoch first counts its
batches from the cut manifests alone (no audio is read) and every rank stops at the smallest
count, whatever lies beyond it is that epoch's leftover (reshuffled into a later epoch).
"""

from __future__ import annotations

import itertools
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch.distributed as dist
from lhotse import CutSet, LilcomChunkyWriter
from lhotse.cut import Cut, MixedCut

from peerseq.errors import DataError

SHAR_KINDS = ("audio", "fbank80", "spec201")


def _mono(cut: Cut) -> Cut:
    """A MixedCut (fsdd-connected) as one cut with its own audio: Shar stores one recording per
    cut. Its supervisions keep their times."""
    return cut.to_mono(mono_downmix=True) if isinstance(cut, MixedCut) else cut


def write_shar(cuts: CutSet, out: Path, split: str, kind: str, shard_size: int) -> int:
    """The split's cuts as Shar shards in out/shar/{split}; returns the number of shards.
    kind: "audio" (FLAC) or a feature kind (computed here, stored as lilcom)."""
    from peerseq.data.features import extractor

    folder = out / "shar" / split
    folder.mkdir(parents=True)
    cuts = cuts.map(_mono)
    if kind == "audio":
        fields = {"recording": "flac"}
    else:
        scratch = out / "shar" / f".features-{split}"  # the shards copy them: removed after
        scratch.mkdir()
        cuts = cuts.compute_and_store_features(
            extractor(kind), storage_path=scratch / "feats", storage_type=LilcomChunkyWriter
        ).drop_recordings()
        fields = {"features": "lilcom"}
    written = cuts.to_shar(folder, fields=fields, shard_size=shard_size, warn_unused_fields=False)
    if kind != "audio":
        shutil.rmtree(scratch)
    return len(written["cuts"])


def shards(corpus: Path, split: str) -> list[dict[str, str]]:
    """Every shard of a split: {"cuts": path, "recording" or "features": path}."""
    folder = Path(corpus) / "shar" / split
    manifests = sorted(folder.glob("cuts.*.jsonl.gz"))
    if not manifests:
        raise DataError(f"data.shar: {folder} holds no Shar shards; prepare the corpus with --shar")
    out = []
    for m in manifests:
        number = m.name.split(".")[1]
        shard = {"cuts": str(m)}
        for field in ("recording", "features"):
            tar = folder / f"{field}.{number}.tar"
            if tar.is_file():
                shard[field] = str(tar)
        out.append(shard)
    return out


def rank_shards(
    all_shards: list[dict[str, str]], seed: int, epoch: int, world_size: int, rank: int
) -> list[dict[str, str]]:
    """The shards rank `rank` reads in `epoch`."""
    if len(all_shards) < world_size:
        raise DataError(
            f"data.shar: {len(all_shards)} shard(s) for {world_size} processes; every process "
            "needs one: prepare with a smaller --shard-size"
        )
    order = list(all_shards)
    random.Random(f"shar/{seed}/{epoch}").shuffle(order)
    return order[rank::world_size]


def shard_cuts(mine: list[dict[str, str]], data: bool = True) -> CutSet:
    """A lazy stream of these shards' cuts, with their audio/features (data) or without (the
    manifests only, for counting)."""
    fields = {k: [s[k] for s in mine] for k in mine[0] if data or k == "cuts"}
    return CutSet.from_shar(fields=fields, shuffle_shards=False)


class SharSampler:
    """A rank's training batches from its own shards (see the module docstring).

    make(cuts) -> a lhotse sampler over a lazy CutSet (world_size 1: the shards are the
    rank's share already); prepare(cuts) filters and limits the stream (data.filter_*,
    data.limit_train)."""

    def __init__(
        self,
        corpus: Path,
        split: str,
        make: Callable[[CutSet], object],
        prepare: Callable[[CutSet], CutSet],
        seed: int,
        world_size: int = 1,
        rank: int = 0,
    ):
        self.shards = shards(corpus, split)
        self.make, self.prepare, self.seed = make, prepare, seed
        self.world_size, self.rank, self.epoch = world_size, rank, 0
        rank_shards(self.shards, seed, 0, world_size, rank)  # enough shards? say so now

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _sampler(self, data: bool):
        mine = rank_shards(self.shards, self.seed, self.epoch, self.world_size, self.rank)
        sampler = self.make(self.prepare(shard_cuts(mine, data)))
        sampler.set_epoch(self.epoch)
        return sampler

    def metadata(self):
        """This rank's batches of the epoch without their audio (only the manifests are read)
        and without agreeing on a count with the other ranks: for counting on one rank."""
        return self._sampler(data=False)

    def batches_per_rank(self) -> int:
        """This epoch's number of batches, the same on every rank (the smallest). Every rank
        must call it: the ranks agree through a collective."""
        count = sum(1 for _ in self.metadata())
        if self.world_size > 1 and dist.is_available() and dist.is_initialized():
            import torch

            n = torch.tensor([count])
            dist.all_reduce(n, op=dist.ReduceOp.MIN)
            count = int(n)
        return count

    def __iter__(self) -> Iterator[CutSet]:
        n = self.batches_per_rank()
        return itertools.islice(iter(self._sampler(data=True)), n)
