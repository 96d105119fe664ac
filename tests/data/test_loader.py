"""peerseq.data.loader: training batches collated ahead in worker processes are the batches
collated in order in the training process, a resume's skip lands on the same batch, and bad
input met in a worker is reported as itself."""

from __future__ import annotations

import pytest
import torch

from peerseq.data.batching import FieldSpec, TextCollator, text_examples, text_sampler
from peerseq.data.loader import batch_rng, epoch_batches
from peerseq.data.manifest import load_text_split
from peerseq.data.tokenizers import load_tokenizer
from peerseq.errors import DataError, PeerseqError


def _setup(corpus):
    fields = {
        "source": FieldSpec("de", load_tokenizer(corpus, "spm_de"), sample=True),
        "target": FieldSpec("en", load_tokenizer(corpus, "spm_en"), add_eos=True, sample=True),
    }
    items = text_examples(load_text_split(corpus, "train"), fields["source"])

    def sampler(epoch):
        s = text_sampler(items, 200, shuffle=True, seed=3)
        s.set_epoch(epoch)
        return s

    return sampler, TextCollator(fields)


def _key(batch):
    return batch.ids, {k: v.tolist() for k, v in batch.tokens.items()}


def test_workers_give_the_batches_of_the_training_process_in_order(m30k_64):
    sampler, collate = _setup(m30k_64)
    here = [_key(b) for b in epoch_batches(sampler(1), collate, 3, 1, workers=0)]
    assert len(here) >= 4
    for workers in (1, 2):
        ahead = [_key(b) for b in epoch_batches(sampler(1), collate, 3, 1, workers=workers)]
        assert ahead == here
    # sampled segmentations come from the batch's own generator: the same after a skip
    assert [_key(b) for b in epoch_batches(sampler(1), collate, 3, 1, skip=2)] == here[2:]
    other_epoch = [_key(b) for b in epoch_batches(sampler(2), collate, 3, 2, workers=0)]
    assert other_epoch != here


def test_segmentations_differ_between_batches_and_follow_the_generator(m30k_64):
    tok = load_tokenizer(m30k_64, "spm_en")
    text = "two young guys with shaggy hair look at their hands while hanging out in the yard"
    a = [tok.encode(text, sample=True, rng=batch_rng(1, 0, i)) for i in range(20)]
    b = [tok.encode(text, sample=True, rng=batch_rng(1, 0, i)) for i in range(20)]
    assert a == b and len({tuple(x) for x in a}) > 1


def test_a_resume_past_the_epoch_end_is_refused(m30k_64):
    sampler, collate = _setup(m30k_64)
    n = sum(1 for _ in epoch_batches(sampler(0), collate, 3, 0, workers=0))
    with pytest.raises(PeerseqError, match=f"batch {n + 5} of epoch 0, but the epoch has only {n}"):
        list(epoch_batches(sampler(0), collate, 3, 0, skip=n + 5, workers=1))


class _BadCollate:
    def __call__(self, items, rng=None):
        raise DataError("feats/train.lca: truncated (expected 80 columns)")


def test_bad_input_in_a_worker_is_raised_as_itself(m30k_64):
    sampler, _ = _setup(m30k_64)
    with pytest.raises(DataError, match=r"^feats/train.lca: truncated \(expected 80 columns\)$"):
        list(epoch_batches(sampler(0), _BadCollate(), 3, 0, workers=1))


def test_a_worker_batch_has_real_tensors(m30k_64):
    sampler, collate = _setup(m30k_64)
    batch = next(iter(epoch_batches(sampler(0), collate, 3, 0, workers=1)))
    assert isinstance(batch.tokens["target"], torch.Tensor) and len(batch) > 0
