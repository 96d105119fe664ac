"""peerseq.data.pipeline.Data: which utterances each split gives, in what form, and never a
corpus it was not given prepared."""

from __future__ import annotations

import pytest

from peerseq.data.config import DataConfig, FieldConfig
from peerseq.data.pipeline import Data
from peerseq.data.prepare import prepare_corpus
from peerseq.errors import PeerseqError


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
    data = Data(config(m30k_speech_300, limit_dev=3), seed=1)
    assert count(data.sampler("dev", training=False)) == 3  # fewer than the buckets


def test_drop_last_drops_the_unfilled_batches_of_training_only(m30k_speech_300):
    """An emptying bucket's last batch is short of the budget; data.drop_last leaves such
    batches out of training (icefall's default) and changes no other, never out of dev or test."""
    seconds = {}

    def batches(**kw):
        data = Data(config(m30k_speech_300, max_frames=3000, **kw), seed=1)
        out = []
        for items in data.sampler("train", training=True):
            out.append(tuple(c.id for c in items))
            seconds[out[-1]] = sum(c.duration for c in items)
        return data, out

    _, kept = batches()
    data, dropped = batches(drop_last=True)
    assert [b for b in kept if b in set(dropped)] == dropped  # the same batches, same order
    gone = [b for b in kept if b not in set(dropped)]
    assert gone and min(kept, key=seconds.get) in gone  # the shortest batch is one that went
    assert count(data.sampler("test", training=False)) == 300


def test_text_only_batches_on_a_speech_corpus(m30k_speech_300):
    """No peer reads audio (an MT model on a speech corpus's texts): text batches, no features."""
    data = Data(config(m30k_speech_300), seed=1, speech=False)
    batch = next(iter(data.batches("test")))
    assert batch.speech is None and batch.tokens["target"].shape[0] == len(batch.ids)
    assert count(data.sampler("test", training=False)) == 300


def test_batch_by_frames_gives_a_text_only_run_the_speech_batches(m30k_speech_300):
    """An MT model trained in the ST runs' place (data.batch_by_frames): the very batches a run
    that reads the audio gets, not text batches; refused on a text corpus."""

    def batches(data):
        return [tuple(c.id for c in items) for items in data.sampler("train", training=True)]

    speech = batches(Data(config(m30k_speech_300, max_frames=3000), seed=1))
    text = Data(config(m30k_speech_300, max_frames=3000), seed=1, speech=False)
    framed = Data(config(m30k_speech_300, max_frames=3000, batch_by_frames=True), 1, speech=False)
    assert batches(framed) == speech and framed.speech and not text.speech
    assert len(list(text.sampler("train", training=True))) != len(speech)  # token batches


def test_batch_by_frames_is_refused_on_a_text_corpus(tmp_path):
    cfg = config(tmp_path / "m30k", prepare={"name": "multi30k", "limit": 40, "vocab_size": 100})
    prepare_corpus(cfg, log=lambda _: None)
    cfg.batch_by_frames = True
    with pytest.raises(PeerseqError, match="batch_by_frames: .* is a text corpus"):
        Data(cfg, seed=1, speech=False)


def test_an_unprepared_corpus_is_refused_not_prepared(tmp_path):
    """Only the explicit preparation step makes a corpus: Data (decoding, evaluation) refuses a
    missing one and writes nothing; prepare_corpus makes it from data.prepare."""
    cfg = config(tmp_path / "m30k", prepare={"name": "multi30k", "limit": 40, "vocab_size": 100})
    cfg.fields = {"target": FieldConfig("de", "spm_de", eos=True)}
    with pytest.raises(PeerseqError, match="not a prepared corpus"):
        Data(cfg, seed=1, speech=False)
    assert not (tmp_path / "m30k").exists()
    prepare_corpus(cfg, log=lambda _: None)
    data = Data(cfg, seed=1, speech=False)
    assert count(data.sampler("train", training=False)) == 40
    with pytest.raises(PeerseqError, match="data.prepare is empty"):
        prepare_corpus(config(tmp_path / "other"))
