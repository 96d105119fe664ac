import pytest
import torch
import torch.nn.functional as F
from torch import nn

from peerseq.models.decoder import TransformerDecoder
from peerseq.models.encoder_decoder import EncoderDecoder
from peerseq.models.encoders import TransformerEncoder
from peerseq.models.frontends import Conv1dSubsampler, TokenEmbedding
from peerseq.tokens import BOS, EOS, PAD

V, D = 15, 32


def make_model(speech: bool, ctc: bool = False, tie: bool = False, d=D, layers=1, dropout=0.1):
    frontend = (
        Conv1dSubsampler(20, d, mid_channels=32, dropout=dropout)
        if speech
        else TokenEmbedding(V, d, dropout)
    )
    return EncoderDecoder(
        frontend,
        TransformerEncoder(d, 4, 2 * d, layers, dropout),
        TransformerDecoder(V, d, 4, 2 * d, layers, dropout),
        nn.Linear(d, V, bias=False),
        ctc_head=nn.Linear(d, V) if ctc else None,
        tie_embeddings=tie,
    )


def test_speech_forward_and_ctc():
    torch.manual_seed(0)
    model = make_model(speech=True, ctc=True)
    speech, src_lengths = torch.randn(2, 30, 20), torch.tensor([30, 21])
    prev, tgt_lengths = torch.randint(4, V, (2, 5)), torch.tensor([5, 3])
    out = model(speech, src_lengths, prev, tgt_lengths)
    assert out.log_probs.shape == (2, 5, V) and out.hidden.shape == (2, 5, D)
    assert out.mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    ctc = model.ctc(model.encode(speech, src_lengths))
    assert ctc.log_probs.shape == (2, 8, V) and ctc.lengths.tolist() == [8, 6]
    (out.log_probs.sum() + ctc.log_probs.sum()).backward()


def test_ctc_without_head_raises():
    model = make_model(speech=False)
    memory = model.encode(torch.randint(4, V, (1, 3)), torch.tensor([3]))
    with pytest.raises(ValueError):
        model.ctc(memory)


def test_decode_step_matches_teacher_forcing():
    torch.manual_seed(0)
    model = make_model(speech=False).eval()
    src, src_lengths = torch.randint(4, V, (2, 6)), torch.tensor([6, 4])
    prev = torch.cat([torch.full((2, 1), BOS), torch.randint(4, V, (2, 4))], dim=1)
    out = model(src, src_lengths, prev, torch.tensor([5, 5]))
    memory = model.encode(src, src_lengths)
    cache = None
    for t in range(1, 6):
        log_probs, cache = model.decode_step(prev[:, :t], memory, cache)
        torch.testing.assert_close(log_probs, out.log_probs[:, t - 1], atol=1e-5, rtol=1e-5)
    cache = model.reorder_cache(cache, torch.tensor([1, 1]))
    assert cache[0].self_k.shape[0] == 2


def test_tied_embeddings_share_one_tensor():
    model = make_model(speech=False, tie=True)
    assert model.output_layer.weight is model.decoder.embed.embedding.weight
    with pytest.raises(ValueError):
        EncoderDecoder(
            TokenEmbedding(V, D),
            TransformerEncoder(D, 4, 64, 1),
            TransformerDecoder(V, D, 4, 64, 1),
            nn.Linear(D, V + 1),
            tie_embeddings=True,
        )


def greedy(model, src, src_lengths, max_len):
    memory = model.encode(src, src_lengths)
    tokens, cache = torch.full((src.size(0), 1), BOS), None
    for _ in range(max_len):
        log_probs, cache = model.decode_step(tokens, memory, cache)
        tokens = torch.cat([tokens, log_probs.argmax(-1, keepdim=True)], dim=1)
    return tokens[:, 1:]


@pytest.fixture
def one_thread():
    # Tiny matrices gain nothing from intra-op threads, and on a shared 2-core machine two
    # threads that wait for each other make this loop ~10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_model_overfits_copy_task(one_thread):
    """20 random (x, x) pairs: the model learns to copy; greedy decoding then reproduces them."""
    torch.manual_seed(0)
    n, max_len = 20, 6
    lengths = torch.randint(3, max_len + 1, (n,))
    src = torch.randint(4, V, (n, max_len)).masked_fill(
        torch.arange(max_len)[None, :] >= lengths[:, None], PAD
    )
    # target = src + EOS; decoder input = BOS + target[:-1]
    tgt = torch.cat([src, torch.full((n, 1), PAD)], dim=1)
    tgt[torch.arange(n), lengths] = EOS
    prev = torch.cat([torch.full((n, 1), BOS), tgt[:, :-1]], dim=1)
    model = make_model(speech=False, tie=True, d=64, layers=2, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        out = model(src, lengths, prev, lengths + 1)
        loss = F.nll_loss(out.log_probs[out.mask], tgt[out.mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05
    model.eval()
    with torch.no_grad():
        hyp = greedy(model, src, lengths, max_len + 1)
    assert torch.equal(hyp[tgt != PAD], tgt[tgt != PAD])
