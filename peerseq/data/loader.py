"""One epoch of training batches, collated ahead of the training step in worker processes.

torch's DataLoader runs lhotse's sampler and the collator in `workers` background processes
(lhotse's own way of feeding a model), so reading features, padding and tokenizing overlap with
the step instead of adding to it. The batches come in the sampler's order whatever the number
of workers, and each draws its random choices (sentencepiece segmentations) from its own
generator seeded by (seed, epoch, index): a batch is the same whether it was collated ahead, in
another process, or after a resume, which skips the epoch's first batches by their metadata.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from peerseq.data.batching import Batch
from peerseq.errors import PeerseqError

PREFETCH = 2  # batches each worker keeps ready


def batch_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The generator of the index-th training batch of an epoch (str seeds hash stably)."""
    return random.Random(f"{seed}/{epoch}/{index}")


@dataclass
class _Failed:
    """Bad input met in a worker: re-raised in the training process as itself, so the CLI
    says what is wrong instead of printing a worker's traceback."""

    error: PeerseqError


class _Collate(Dataset):
    """dataset[(index, items)] -> the collated batch: lhotse's map-style pattern, where the
    sampler runs in the training process and the workers only load and collate. (The sampler
    must not run in the workers: lhotse's bucketing seeds itself with the worker's id.)"""

    def __init__(self, collate: Callable, seed: int, epoch: int):
        self.collate, self.seed, self.epoch = collate, seed, epoch

    def __getitem__(self, job: tuple[int, object]) -> Batch | _Failed:
        index, items = job
        try:
            return self.collate(items, batch_rng(self.seed, self.epoch, index))
        except PeerseqError as e:
            return _Failed(e)


def _numbered(sampler, epoch: int, skip: int) -> Iterator[tuple[int, object]]:
    """(index, items) for the sampler's epoch from the skip-th batch on."""
    items = iter(sampler)  # lhotse: iter() starts the epoch (seed, epoch)
    for i in range(skip):
        if next(items, None) is None:
            raise PeerseqError(
                f"resuming at batch {skip} of epoch {epoch}, but the epoch has only {i} batches "
                "(state.json edited by hand, or other data?)"
            )
    index = skip
    while (got := next(items, None)) is not None:
        yield index, got
        index += 1


def epoch_batches(
    sampler, collate: Callable, seed: int, epoch: int, skip: int = 0, workers: int = 1
) -> Iterator[Batch]:
    """The epoch's training batches from the skip-th on (sampler: lhotse's, set to the epoch;
    collate(items, rng) -> Batch). workers=0 collates in this process, between steps."""
    dataset = _Collate(collate, seed, epoch)
    jobs = _numbered(sampler, epoch, skip)  # iterated once, in this process
    if workers == 0:
        source = (dataset[job] for job in jobs)
    else:
        source = DataLoader(
            dataset,
            sampler=jobs,
            batch_size=None,
            num_workers=workers,
            prefetch_factor=PREFETCH,
            # its workers' base seed from a generator of its own: drawn from the global one, a
            # resumed epoch (a second iterator) would shift every later dropout mask
            generator=torch.Generator().manual_seed(epoch),
        )
    for got in source:
        if isinstance(got, _Failed):
            raise got.error
        yield got
