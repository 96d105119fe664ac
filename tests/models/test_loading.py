import pytest
import torch

from peerseq.models.loading import load_encoder
from peerseq.models.presets import build


def test_asr_ctc_encoder_loads_into_st_model():
    torch.manual_seed(0)
    asr = build("asr_transformer_ctc", "tiny", src_feats=20, vocab=9)
    st = build("st_transformer", "tiny", src_feats=20, vocab=11)
    decoder_before = {k: v.clone() for k, v in st.decoder.state_dict().items()}
    keys = load_encoder(st, asr)
    assert keys and all(k.startswith(("encoder.", "frontend.")) for k in keys)
    assert any(k.startswith("frontend.") for k in keys)
    for k in keys:
        assert torch.equal(st.state_dict()[k], asr.state_dict()[k])
    for k, v in st.decoder.state_dict().items():  # the decoder is untouched
        assert torch.equal(v, decoder_before[k])
    # loaded weights give the same encoder states
    st.eval()
    asr.eval()
    speech, lengths = torch.randn(2, 30, 20), torch.tensor([30, 17])
    memory = st.encode(speech, lengths)
    torch.testing.assert_close(memory.x, asr(speech, lengths).hidden)


def test_from_state_dict_and_encoder_only():
    a = build("asr_conformer_ctc", "tiny", src_feats=20, vocab=9)
    b = build("asr_conformer_ctc", "tiny", src_feats=20, vocab=9)
    keys = load_encoder(b, a.state_dict(), frontend_prefix=None)
    assert keys and all(k.startswith("encoder.") for k in keys)
    assert any("running_mean" in k for k in keys)  # buffers (BatchNorm statistics) come too
    assert not torch.equal(a.frontend.proj.weight, b.frontend.proj.weight)


def test_shape_mismatch_names_the_key_and_copies_nothing():
    src = build("asr_transformer_ctc", "tiny", src_feats=20, vocab=9, ffn=48)
    dst = build("st_transformer", "tiny", src_feats=20, vocab=11)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ValueError, match=r"encoder\.layers\.0\.ffn\.0\.bias.*\(48,\).*\(64,\)"):
        load_encoder(dst, src)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, before[k])


def test_missing_or_extra_keys_rejected():
    shallow = build("asr_transformer_ctc", "tiny", src_feats=20, vocab=9, enc_layers=1)
    deep = build("st_transformer", "tiny", src_feats=20, vocab=11)  # 2 encoder layers
    with pytest.raises(ValueError, match="source has no 'encoder.layers.1"):
        load_encoder(deep, shallow)
    with pytest.raises(ValueError, match="destination has no 'encoder.layers.1"):
        load_encoder(
            build("st_transformer", "tiny", src_feats=20, vocab=11, enc_layers=1),
            build("asr_transformer_ctc", "tiny", src_feats=20, vocab=9),
        )
