"""Links, objective and the two update rules on tiny real models."""

import copy

import pytest
import torch
import torch.nn.functional as F

from peerseq.engine.link import Link
from peerseq.engine.objective import objective
from peerseq.engine.optim import Optimisation
from peerseq.engine.schedules import Constant, Cyclical
from peerseq.engine.update import alternating, joint
from peerseq.errors import PeerseqError
from tests.engine.helpers import batch, ctc_peers, mt_experiment, st_mt_peers


def _sgd(peers, lr=0.1):
    opts = {n: torch.optim.SGD(p.model.parameters(), lr=lr) for n, p in peers.items()}
    scheds = {n: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0) for n, o in opts.items()}
    return Optimisation(opts, scheds)


def test_objective_terms_are_named_and_summed():
    peers, b = st_mt_peers(), batch()
    links = [Link("mt", "st", "kl_symmetric", Cyclical(0.5, 4), name="beta")]
    outs = {n: p.forward(b) for n, p in peers.items()}
    t = objective(peers, links, outs, b, step=2)
    assert set(t) == {"st/nll", "mt/nll", "kl(mt||st)", "kl(st||mt)", "beta", "total"}
    assert t["beta"] == 0.5
    expected = t["st/nll"] + t["mt/nll"] + 0.5 * (t["kl(mt||st)"] + t["kl(st||mt)"])
    assert torch.allclose(t["total"], expected)
    # KL(p_mt || p_st) per valid target position, by torch's kl_div (input = log q, target = p)
    mask = outs["mt"].mask & outs["st"].mask
    p_mt, p_st = outs["mt"].log_probs[mask], outs["st"].log_probs[mask]
    kl = F.kl_div(p_st, p_mt, log_target=True, reduction="sum") / mask.sum()
    torch.testing.assert_close(t["kl(mt||st)"], kl)
    reverse = F.kl_div(p_mt, p_st, log_target=True, reduction="sum") / mask.sum()
    assert not torch.allclose(kl, reverse)  # the direction matters on this input


def test_link_grad_side():
    peers, b = st_mt_peers(), batch()
    link = Link("mt", "st", "kl", grad="st")
    outs = {n: p.forward(b) for n, p in peers.items()}
    (term,) = link.terms(outs, b).values()
    term.backward()
    assert all(p.grad is None for p in peers["mt"].model.parameters())
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in peers["st"].model.parameters()
    )
    with pytest.raises(PeerseqError, match="grad must be"):
        Link("mt", "st", grad="asr")


def test_link_needs_the_same_positions():
    peers, b = st_mt_peers(), batch()
    ctc = ctc_peers()["a"]
    outs = {"st": peers["st"].forward(b), "a": ctc.forward(b)}
    with pytest.raises(PeerseqError, match="not on the same positions"):
        Link("st", "a", "kl").terms(outs, b)


def test_joint_is_one_backward_of_the_total():
    peers, b = st_mt_peers(), batch()
    links = [Link("mt", "st", "kl_symmetric", Constant(0.7))]
    ref = copy.deepcopy(peers)
    joint(peers, links, b, 1, _sgd(peers))
    # by hand
    outs = {n: p.forward(b) for n, p in ref.items()}
    objective(ref, links, outs, b, 1)["total"].backward()
    for p in ref.values():
        for w in p.model.parameters():
            if w.grad is not None:
                w.data -= 0.1 * w.grad
    for n in peers:
        for x, y in zip(peers[n].model.parameters(), ref[n].model.parameters(), strict=True):
            assert torch.allclose(x, y, atol=1e-6)


def test_alternating_is_algorithm_1():
    peers, b = st_mt_peers(), batch()
    links = [Link("mt", "st", "kl_symmetric", Constant(0.7))]
    ref = copy.deepcopy(peers)
    logged = alternating(peers, links, b, 1, _sgd(peers))
    assert "st:total" in logged and "mt:total" in logged

    def sgd_step(model, loss):
        model.zero_grad()
        loss.backward()
        for w in model.parameters():
            if w.grad is not None:
                w.data -= 0.1 * w.grad

    # 1. p_st, p_mt; 2. freeze mt, update st
    with torch.no_grad():
        mt_out = ref["mt"].forward(b)
    st_out = ref["st"].forward(b)
    loss = objective(ref, links, {"st": st_out, "mt": mt_out}, b, 1, for_peer="st")["total"]
    sgd_step(ref["st"].model, loss)
    # 3. update p_st; 4. freeze st, update mt
    with torch.no_grad():
        st_out = ref["st"].forward(b)
    mt_out = ref["mt"].forward(b)
    loss = objective(ref, links, {"st": st_out, "mt": mt_out}, b, 1, for_peer="mt")["total"]
    sgd_step(ref["mt"].model, loss)
    for n in peers:
        for x, y in zip(peers[n].model.parameters(), ref[n].model.parameters(), strict=True):
            assert torch.allclose(x, y, atol=1e-6)


def test_frozen_teacher_is_not_updated():
    peers, b = st_mt_peers(), batch()
    peers["mt"].trainable = False
    peers["mt"].model.eval()
    before = [w.clone() for w in peers["mt"].model.parameters()]
    opt = _sgd({"st": peers["st"]})
    logged = joint(peers, [Link("mt", "st", "kl_symmetric", grad="st")], b, 1, opt)
    assert "mt/nll" not in logged and "st/nll" in logged
    params = peers["mt"].model.parameters()
    assert all(torch.equal(x, y) for x, y in zip(before, params, strict=True))


def test_ctc_students_with_l2_and_seqkd_links():
    peers, b = ctc_peers(), batch()
    outs = {n: p.forward(b) for n, p in peers.items()}
    l2 = Link("a", "b", "l2").terms(outs, b)
    kd = Link("a", "b", "seqkd", grad="b").terms(outs, b)
    # the squared L2 norm of the posterior difference per valid frame, averaged over frames
    mask = outs["a"].mask & outs["b"].mask
    diff = outs["a"].log_probs[mask].exp() - outs["b"].log_probs[mask].exp()
    norms = torch.linalg.vector_norm(diff, dim=-1) ** 2
    assert list(l2) == ["l2(a,b)"] and mask.sum() > 0
    torch.testing.assert_close(l2["l2(a,b)"], norms.mean())
    b.tokens["hyp:a"], b.lengths["hyp:a"] = b.tokens["transcript"], b.lengths["transcript"]
    cached = Link("a", "b", "seqkd", grad="b").terms(outs, b)
    (v,) = cached.values()
    # cached hypotheses: b's CTC on them, summed over rows by torch, per target token
    out_b, n = outs["b"], b.lengths["transcript"]
    rows = F.ctc_loss(out_b.log_probs.transpose(0, 1), b.tokens["transcript"], out_b.lengths, n,
                      reduction="none")  # fmt: skip
    assert torch.isfinite(rows).all()  # every row can be aligned
    torch.testing.assert_close(v, rows.sum() / n.sum())
    assert set(kd) == set(cached) == {"seqkd(a->b)"}


def test_seqkd_link_averages_a_teachers_k_best():
    """k > 1 (paper 003: 'k-best beam search'): attach keeps every hypothesis, and the link is
    the mean CTC over each utterance's k hypotheses (seqkd_ctc); with k = 1 it is the CTC on the
    padded 1-best, as before."""
    from peerseq.decoding.teacher_labels import attach
    from peerseq.losses import ctc_loss, seqkd_ctc

    peers, b = ctc_peers(), batch()
    outs = {n: p.forward(b) for n, p in peers.items()}
    kbest = {"u0": [[4, 5], [4, 6, 7]], "u1": [[5]], "u2": [[6, 6], [6], [7, 8]]}
    attach(b, "t", kbest)
    assert b.kbest["hyp:t"] == [kbest[i] for i in b.ids]
    assert b.tokens["hyp:t"][:, :2].tolist() == [[4, 5], [5, 0], [6, 6]]  # the padded 1-best
    (term,) = Link("t", "b", "seqkd", grad="b").terms(outs, b).values()
    out = outs["b"]
    expected = seqkd_ctc(out.log_probs, out.lengths, [kbest[i] for i in b.ids])
    assert torch.allclose(term, expected)
    one_best = [[hs[0]] for hs in kbest.values()]
    assert not torch.allclose(term, seqkd_ctc(out.log_probs, out.lengths, one_best))
    b1 = attach(batch(), "t", {i: [hs[0]] for i, hs in kbest.items()})
    assert "hyp:t" not in b1.kbest  # k = 1: the padded 1-best only
    (term1,) = Link("t", "b", "seqkd", grad="b").terms(outs, b1).values()
    ref = ctc_loss(out.log_probs, out.lengths, b1.tokens["hyp:t"], b1.lengths["hyp:t"])
    assert torch.allclose(term1, ref)
    assert b.to("cpu").kbest == b.kbest  # moving a batch keeps them


def test_shared_decoder_is_one_module_updated_once(tmp_path, m30k_32):
    from peerseq.build import build_peers
    from peerseq.data.pipeline import Data
    from peerseq.train import Trainer

    exp = mt_experiment(
        tmp_path,
        {
            "a": {"model": {"preset": "mt_transformer", "size": "tiny"}, "reads": "source"},
            "b": {
                "model": {
                    "preset": "mt_transformer",
                    "size": "tiny",
                    "share": {"decoder": "a", "output_layer": "a"},
                },
                "reads": "source",
            },
        },
        corpus=m30k_32,
    )
    peers = build_peers(exp, Data(exp.data, 1))
    assert peers["b"].model.decoder is peers["a"].model.decoder
    assert peers["b"].model.encoder is not peers["a"].model.encoder
    trainer = Trainer(exp)
    owned = [
        id(p) for o in trainer.optimisers.values() for g in o.param_groups for p in g["params"]
    ]
    assert len(owned) == len(set(owned))  # every parameter in one optimiser only
    assert trainer.fit().step == 2


def test_rdrop_is_one_model_linked_to_itself(tmp_path, m30k_32):
    """R-Drop (Liang et al. 2021) needs no loop of its own: a second peer that is the same model
    (model.same_as), each forward with its own dropout masks, and a symmetric KL link."""
    import json

    from peerseq.train import Trainer

    # (the tiny preset has no dropout: then both passes agree and the link is zero)
    mt = {
        "model": {"preset": "mt_transformer", "size": "tiny", "overrides": {"dropout": 0.3}},
        "reads": "source",
    }
    drop = {"model": {"preset": "mt_transformer", "same_as": "seq"}, "reads": "source"}
    drop["decode"] = {"metric": "none"}
    link = {"a": "seq", "b": "drop", "kind": "kl_symmetric", "weight": 2.5, "name": "alpha"}
    trainer = Trainer(mt_experiment(tmp_path, {"seq": mt, "drop": drop}, [link], corpus=m30k_32))
    assert trainer.peers["drop"].model is trainer.peers["seq"].model
    owned = [p for o in trainer.optimisers.values() for g in o.param_groups for p in g["params"]]
    n_params = len(list(trainer.peers["seq"].model.parameters()))
    assert len(owned) == len({id(p) for p in owned}) == n_params
    trainer.fit()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2]  # max_steps 2, logged every step
    # dropout differs between the two passes, so the divergence is not zero
    assert all(r["kl(seq||drop)"] > 0 and r["kl(drop||seq)"] > 0 for r in train)
    assert all(r["alpha"] == 2.5 for r in train)


def test_encoder_decoder_trains_on_a_frozen_teachers_hypotheses(tmp_path, m30k_32):
    """Sequence-level KD for MT (Kim & Rush 2016): the student's targets are the teacher's
    cached beam 1-best (with EOS) in training, the reference on dev."""
    from peerseq.decoding.teacher_labels import weights_hash
    from peerseq.train import Trainer

    teacher = {
        "model": {"preset": "mt_transformer", "size": "tiny"},
        "reads": "source",
        "trainable": False,
        "decode": {"beam": 2, "max_len_b": 5},
    }
    student = {
        "model": {"preset": "mt_transformer", "size": "tiny"},
        "reads": "source",
        "train_on_hyps_of": "teacher",
    }
    trainer = Trainer(mt_experiment(tmp_path, {"teacher": teacher, "seq": student}, corpus=m30k_32))
    labels = trainer.labels["teacher"]
    assert len(labels) == 32 and all(len(v) == 1 for v in labels.values())
    cached = list((tmp_path / "run" / "pseudo_labels").glob("teacher-*.json"))
    digest = weights_hash(trainer.peers["teacher"].model)
    # named by the weights, k and the teacher's decode settings (beam, length penalty, limits)
    assert [p.name for p in cached] == [f"teacher-{digest}-k1-b2-lp1.0-len1.2x+5.json"]
    batch = next(iter(trainer.data.batches("train")))
    batch = trainer._attach(batch)
    tokens, lengths = trainer.peers["seq"].targets(batch)
    for row, n, uid in zip(tokens, lengths, batch.ids, strict=True):
        assert row[: int(n)].tolist() == labels[uid][0] + [2]  # the hypothesis, then EOS
    dev = next(iter(trainer.data.batches("dev")))
    assert trainer.peers["seq"].targets(dev)[0] is dev.tokens["target"]
    assert trainer.fit().step == 2


def test_train_on_hyps_of_needs_a_frozen_teacher(tmp_path, m30k_32):
    from peerseq.errors import PeerseqError
    from peerseq.train import Trainer

    mt = {"model": {"preset": "mt_transformer", "size": "tiny"}, "reads": "source"}
    student = dict(mt, train_on_hyps_of="teacher")
    with pytest.raises(PeerseqError, match="must be a frozen peer"):
        Trainer(mt_experiment(tmp_path, {"teacher": mt, "seq": student}, corpus=m30k_32))


def test_shared_parameters_refuse_alternating_updates_and_freezing(tmp_path, m30k_32):
    from peerseq.errors import PeerseqError
    from peerseq.train import Trainer

    mt = {"model": {"preset": "mt_transformer", "size": "tiny"}, "reads": "source"}
    drop = {"model": {"preset": "mt_transformer", "same_as": "seq"}, "reads": "source"}
    exp = mt_experiment(tmp_path, {"seq": mt, "drop": drop}, corpus=m30k_32)
    exp.train.update = "alternating"
    with pytest.raises(PeerseqError, match="use joint"):
        Trainer(exp)
    frozen = mt_experiment(
        tmp_path, {"seq": mt, "drop": dict(drop, trainable=False)}, corpus=m30k_32
    )
    with pytest.raises(PeerseqError, match="freeze seq too"):
        Trainer(frozen)


def test_em_network_for_encoder_decoders(tmp_path, m30k_32):
    """EM-AED (paper 002 Eq. 5-7): the auxiliary network reads the decoder states and the target
    masked with lambda; KL(em || seq) per target position reaches both sides."""
    import json

    from peerseq.train import Trainer

    seq = {"model": {"preset": "mt_transformer", "size": "tiny"}, "reads": "source"}
    em = {
        "model": {"preset": "em_network", "size": "tiny", "mask_prob": 0.5},
        "reads": "@seq",
        "reads_also": "target",
        "decode": {"metric": "none"},
    }
    link = {"a": "em", "b": "seq", "kind": "kl", "weight": 2.0, "name": "alpha"}
    trainer = Trainer(mt_experiment(tmp_path, {"seq": seq, "em": em}, [link], corpus=m30k_32))
    assert trainer.peers["em"].model.output_layer is trainer.peers["seq"].model.output_layer
    assert trainer.peers["em"].model.mask_prob == 0.5
    trainer.fit()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert {"seq/nll", "em/nll", "kl(em||seq)", "alpha"} <= set(train[0])
