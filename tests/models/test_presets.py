import pytest
import torch

from peerseq.models.ctc_model import CTCModel
from peerseq.models.encoder_decoder import EncoderDecoder
from peerseq.models.frontends import TokenEmbedding
from peerseq.models.presets import PRESETS, build, count_parameters
from peerseq.tokens import BOS

# em_network sits on another peer's model: tests/models/test_em_auxiliary.py builds it
STANDALONE = sorted(set(PRESETS) - {"em_network"})


@pytest.mark.parametrize("name", STANDALONE)
def test_tiny_presets_run(name):
    torch.manual_seed(0)
    model = build(name, "tiny", src_feats=20, vocab=11).eval()
    if isinstance(model, CTCModel):
        out = model(torch.randn(2, 32, 20), torch.tensor([32, 20]))
        assert out.log_probs.shape[::2] == (2, 11)
        return
    assert isinstance(model, EncoderDecoder)
    if isinstance(model.frontend, TokenEmbedding):  # text in (MT)
        src, src_lengths = torch.randint(4, 11, (2, 7)), torch.tensor([7, 4])
    else:
        src, src_lengths = torch.randn(2, 32, 20), torch.tensor([32, 20])
    prev = torch.randint(4, 11, (2, 5))
    prev[:, 0] = BOS
    out = model(src, src_lengths, prev, torch.tensor([5, 2]))
    assert out.log_probs.shape == (2, 5, 11)
    log_probs, _ = model.decode_step(prev[:, :1], model.encode(src, src_lengths), None)
    assert log_probs.shape == (2, 11)


# (name, vocab) -> parameter range in millions. References: fairseq s2t_transformer_m ~76 M
# (untied, vocab 10k); NeMo Conformer-CTC small ~13 M; fairseq transformer_iwslt_de_en ~40 M.
PAPER_SIZES = {
    ("st_transformer", 8000): (65, 80),
    ("mt_transformer", 8000): (65, 80),
    ("asr_transformer_ctc", 5000): (35, 45),
    ("asr_conformer_ctc", 128): (11, 15),
    ("aed_transformer", 10000): (35, 45),
}


@pytest.mark.parametrize("name,vocab", sorted(PAPER_SIZES))
def test_paper_sizes_parameter_counts(name, vocab):
    with torch.device("meta"):  # no memory, no init time
        model = build(name, "paper", src_feats=80, vocab=vocab)
    low, high = PAPER_SIZES[(name, vocab)]
    assert low * 1e6 <= count_parameters(model) <= high * 1e6


def test_paper_st_matches_paper_000():
    with torch.device("meta"):
        model = build("st_transformer", "paper")
    assert len(model.encoder.layers) == 12 and len(model.decoder.layers) == 6
    assert [c.kernel_size[0] for c in model.frontend.convs] == [5, 5]
    assert [c.stride[0] for c in model.frontend.convs] == [2, 2]
    assert model.encoder.layers[0].ffn[0].out_features == 2048
    assert model.encoder.out_dim == 512


def test_sizes_grow():
    for name in STANDALONE:
        with torch.device("meta"):
            counts = [
                count_parameters(build(name, s, vocab=1000)) for s in ("tiny", "small", "paper")
            ]
        assert counts == sorted(counts), name


def test_overrides_ctc_head_and_errors():
    model = build("st_transformer", "tiny", src_feats=20, vocab=11, ctc_vocab=9, enc_layers=3)
    assert len(model.encoder.layers) == 3 and model.ctc_head.out_features == 9
    mt = build("mt_transformer", "tiny", vocab=11, src_vocab=13)
    assert mt.frontend.embedding.num_embeddings == 13
    untied = build("mt_transformer", "tiny", vocab=11, tie_embeddings=False)
    assert (
        count_parameters(untied)
        == count_parameters(build("mt_transformer", "tiny", vocab=11)) + 11 * 32
    )
    with pytest.raises(ValueError, match="unknown preset"):
        build("nope")
    with pytest.raises(ValueError, match="no size"):
        build("mt_transformer", "huge")
    with pytest.raises(ValueError, match="unknown overrides"):
        build("mt_transformer", "tiny", depth=3)


def test_count_parameters_trainable_only():
    model = build("asr_conformer_ctc", "tiny", src_feats=20, vocab=11)
    total = count_parameters(model)
    model.frontend.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - count_parameters(model.frontend)
