"""peerseq.build.Data: which utterances each split gives, and in what form."""

from __future__ import annotations

import pytest

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


def test_init_decoder_from_loads_only_the_decoder(m30k_speech_300, tmp_path):
    """An ST model can start its decoder (and the tied output layer) from an MT run's."""
    import torch

    from peerseq.build import build_model
    from peerseq.errors import PeerseqError
    from peerseq.experiment import ModelConfig
    from peerseq.rundir.weights import save_weights

    fields = {"source": FieldConfig("en", "spm_en"), "target": FieldConfig("de", "spm_de")}
    data = Data(DataConfig(corpus=str(m30k_speech_300), fields=fields), seed=1)
    mt = build_model(ModelConfig("mt_transformer", "tiny"), data, "source", "target", {})
    save_weights(tmp_path / "mt" / "best" / "model.mt.safetensors", mt.state_dict())
    cfg = ModelConfig("st_transformer", "tiny", init_decoder_from=f"{tmp_path / 'mt'}:mt")
    st = build_model(cfg, data, "speech", "target", {})
    theirs, ours = mt.state_dict(), st.state_dict()
    decoder = [k for k in ours if k.startswith("decoder.")]
    assert decoder and all(torch.equal(ours[k], theirs[k]) for k in decoder)
    # the encoders differ in kind (speech and text): nothing else is taken
    matrices = [k for k in ours if k.startswith("encoder.") and ours[k].ndim == 2 and k in theirs]
    assert matrices and not any(torch.equal(ours[k], theirs[k]) for k in matrices)
    cfg = ModelConfig("st_transformer", "small", init_decoder_from=f"{tmp_path / 'mt'}:mt")
    with pytest.raises(PeerseqError, match="init_decoder_from .*shape mismatch"):
        build_model(cfg, data, "speech", "target", {})
