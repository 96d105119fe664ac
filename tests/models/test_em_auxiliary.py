import torch
import torch.nn.functional as F

from peerseq.models.em_auxiliary import EMAuxiliaryNetwork, em_output, mask_target
from peerseq.models.presets import build, count_parameters

V, FEATS, D = 12, 20, 32
MASK_ID = V  # the AED auxiliary embedding has one extra row for the mask token


def _tokens(b=4, u=9, lengths=(9, 3, 6, 1)):
    lengths = torch.tensor(lengths)
    tokens = torch.randint(3, V, (b, u))
    tokens[torch.arange(u)[None, :] >= lengths[:, None]] = 0  # pad = 0
    return tokens, lengths


# --- mask_target -------------------------------------------------------------------------------


def test_mask_rate_close_to_lambda_and_padding_untouched():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (256,))
    tokens = torch.randint(3, V, (256, 200))
    pad = torch.arange(200)[None, :] >= lengths[:, None]
    tokens[pad] = 0
    for lam in (0.1, 0.5, 0.7):
        masked = mask_target(tokens, lengths, lam, MASK_ID, g)
        hit = masked == MASK_ID
        assert not hit[pad].any() and torch.equal(masked[pad], tokens[pad])
        rate = hit[~pad].float().mean().item()
        assert abs(rate - lam) < 0.01, (lam, rate)  # ~25k valid tokens: std ~0.003
        assert torch.equal(masked[~hit], tokens[~hit])  # unmasked tokens unchanged


def test_mask_lambda_0_identity_and_1_all_valid():
    tokens, lengths = _tokens()
    valid = torch.arange(tokens.size(1))[None, :] < lengths[:, None]
    assert torch.equal(mask_target(tokens, lengths, 0.0, MASK_ID), tokens)
    all_masked = mask_target(tokens, lengths, 1.0, MASK_ID)
    assert (all_masked[valid] == MASK_ID).all() and (all_masked[~valid] == 0).all()


def test_mask_deterministic_with_generator_and_pure():
    tokens, lengths = _tokens()
    before = tokens.clone()
    a = mask_target(tokens, lengths, 0.5, MASK_ID, torch.Generator().manual_seed(3))
    b = mask_target(tokens, lengths, 0.5, MASK_ID, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(tokens, before)


# --- auxiliary network -------------------------------------------------------------------------


def _aux(vocab=V, src_dim=None, dropout=0.0):
    return EMAuxiliaryNetwork(vocab, D, heads=2, ffn=64, dropout=dropout, src_dim=src_dim)


def test_aux_shape_and_source_padding_zero():
    torch.manual_seed(0)
    aux = _aux(src_dim=48)
    src, src_len = torch.randn(4, 15, 48), torch.tensor([15, 7, 11, 2])
    tokens, tok_len = _tokens()
    out = aux(src, src_len, tokens, tok_len)
    assert out.shape == (4, 15, 48)
    pad = torch.arange(15)[None, :] >= src_len[:, None]
    assert (out[pad] == 0).all() and torch.isfinite(out).all()


def test_aux_padding_invariance_eval():
    torch.manual_seed(0)
    aux = _aux().eval()
    src, src_len = torch.randn(4, 15, D), torch.tensor([15, 7, 11, 2])
    tokens, tok_len = _tokens()
    src[1, 7:] = 50.0  # garbage source padding
    tokens[2, 6:] = 5  # garbage target padding
    out = aux(src, src_len, tokens, tok_len)
    for i in range(4):
        s, u = int(src_len[i]), int(tok_len[i])
        one = slice(i, i + 1)
        alone = aux(src[one, :s], src_len[one], tokens[one, :u], tok_len[one])
        torch.testing.assert_close(alone[0], out[i, :s], atol=1e-5, rtol=1e-5)


def test_aux_empty_target_is_finite():
    aux = _aux().eval()
    out = aux(
        torch.randn(2, 5, D),
        torch.tensor([5, 3]),
        torch.zeros(2, 4, dtype=torch.long),
        torch.tensor([0, 2]),
    )
    assert torch.isfinite(out).all()


# --- with sequence models ----------------------------------------------------------------------


def _separate(model, aux):
    assert not set(model.state_dict()) & {f"aux.{k}" for k in aux.state_dict()}
    assert not {id(p) for p in model.parameters()} & {id(p) for p in aux.parameters()}
    both = torch.nn.ModuleDict({"seq": model, "aux": aux})
    assert count_parameters(both) == count_parameters(model) + count_parameters(aux)


def test_ctc_form_gradients_reach_aux_and_shared_encoder():
    torch.manual_seed(0)
    model = build("asr_conformer_ctc", "tiny", src_feats=FEATS, vocab=V)
    aux = _aux()
    _separate(model, aux)
    speech, lengths = torch.randn(3, 40, FEATS), torch.tensor([40, 23, 31])
    targets, tgt_len = torch.randint(1, V, (3, 4)), torch.tensor([4, 2, 3])  # blank 0 never
    out = model(speech, lengths)
    em = em_output(aux, model.output_layer, out, targets, tgt_len)  # full target for CTC
    assert em.log_probs.shape == out.log_probs.shape and torch.equal(em.lengths, out.lengths)
    loss = F.ctc_loss(em.log_probs.transpose(0, 1), targets, em.lengths, tgt_len, blank=0)
    loss.backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for p in aux.parameters()
        if p.requires_grad and p.dim() > 1 and p is not aux.embed.embedding.weight
    )
    assert aux.embed.embedding.weight.grad[targets.unique()].abs().sum() > 0
    assert model.encoder.layers[0].attn.q_proj.weight.grad.abs().sum() > 0
    assert model.output_layer.weight.grad.abs().sum() > 0  # the shared output layer


def test_aed_form_with_masked_target():
    torch.manual_seed(0)
    model = build("aed_transformer", "tiny", vocab=V)
    aux = _aux(vocab=V + 1)  # + the mask token
    _separate(model, aux)
    src, src_len = _tokens()
    y, y_len = _tokens(lengths=(5, 9, 2, 7))
    prev = torch.cat([torch.ones(4, 1, dtype=torch.long), y[:, :-1]], dim=1)  # BOS = 1
    out = model(src, src_len, prev, y_len)
    y_masked = mask_target(y, y_len, 0.5, MASK_ID, torch.Generator().manual_seed(0))
    em = em_output(aux, model.output_layer, out, y_masked, y_len)
    assert em.log_probs.shape == (4, 9, V) and torch.equal(em.mask, out.mask)
    nll = F.nll_loss(em.log_probs[em.mask], y[em.mask])
    nll.backward()
    assert aux.cross_layers[0].attn.kv_proj.weight.grad.abs().sum() > 0
    assert model.encoder.layers[0].attn.q_proj.weight.grad.abs().sum() > 0
    assert model.decoder.embed.embedding.weight.grad.abs().sum() > 0
