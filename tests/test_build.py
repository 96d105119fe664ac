"""peerseq.build: models from their config, initialised from other runs' weights."""

from __future__ import annotations

import pytest

from peerseq.data.config import DataConfig, FieldConfig
from peerseq.data.pipeline import Data


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
