"""peerseq.build.Data: which utterances each split gives, and in what form."""

from __future__ import annotations

from peerseq.build import Data
from peerseq.experiment import DataConfig, FieldConfig


def config(corpus, **kw) -> DataConfig:
    fields = {"target": FieldConfig("de", "spm_de", eos=True)}
    return DataConfig(corpus=str(corpus), fields=fields, precompute=False, **kw)


def count(sampler) -> int:
    return sum(len(items) for items in sampler)


def test_length_filter_applies_to_training_only(m30k_speech_300):
    """Paper 000 removes long samples from training; dev and test are scored whole."""
    data = Data(config(m30k_speech_300, filter_max_frames=250), seed=1)
    assert 0 < count(data.sampler("train", training=True)) < 300
    assert count(data.sampler("test", training=False)) == 300
    assert count(data.sampler("dev", training=False, limit=3)) == 3  # fewer than the buckets


def test_text_only_batches_on_a_speech_corpus(m30k_speech_300):
    """No peer reads audio (an MT model on a speech corpus's texts): text batches, no features."""
    data = Data(config(m30k_speech_300), seed=1, speech=False)
    batch = next(iter(data.batches("test")))
    assert batch.speech is None and batch.tokens["target"].shape[0] == len(batch.ids)
    assert count(data.sampler("test", training=False)) == 300
