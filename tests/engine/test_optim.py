"""peerseq.engine.optim: the optimiser a run trains with."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from peerseq.engine.optim import OptimConfig, build_optimiser, fusable


def test_cpu_parameters_get_the_fused_kernel_and_the_same_update():
    """The fused AdamW (a fifth of the step's non-matmul time saved on a CPU) makes the same
    update as the per-parameter loop, up to rounding."""
    torch.manual_seed(0)
    a, b = nn.Linear(8, 4), nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    cfg = OptimConfig(lr=1e-2, weight_decay=0.01, schedule="constant")
    fused, _ = build_optimiser(list(a.parameters()), cfg)
    assert fused.param_groups[0]["fused"] is True
    loop = torch.optim.AdamW(b.parameters(), lr=1e-2, betas=(0.9, 0.98), weight_decay=0.01)
    x = torch.randn(16, 8)
    for _ in range(5):
        for m, opt in ((a, fused), (b, loop)):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    sgd, _ = build_optimiser(list(a.parameters()), OptimConfig(name="sgd"))
    assert sgd.param_groups[0]["fused"] is True


def test_integer_or_empty_parameters_leave_the_choice_to_torch():
    assert fusable([]) is None
    assert fusable([nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)]) is None


def test_cosine_warms_up_then_anneals_to_zero_at_the_budget():
    """A fixed budget ends on an annealed model: the LR rises linearly for `warmup` updates,
    peaks, and reaches zero at `total`, halfway down at the middle of the decay."""
    lin = nn.Linear(2, 2)
    cfg = OptimConfig(lr=1e-3, schedule="cosine", warmup=10, total=110)
    opt, sched = build_optimiser(list(lin.parameters()), cfg)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1e-3)
    assert lrs[59] == pytest.approx(5e-4)  # update 60: half of the 100 decay updates done
    assert lrs[109] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))


def test_cosine_without_a_budget_past_the_warm_up_is_refused():
    with pytest.raises(ValueError, match="total"):
        OptimConfig(schedule="cosine", warmup=100)
    with pytest.raises(ValueError, match="greater than warmup"):
        OptimConfig(schedule="cosine", warmup=100, total=100)


def test_a_cosine_budget_other_than_max_steps_is_said(tmp_path):
    from peerseq.config import load_config
    from peerseq.experiment import Experiment

    base = [f"out_dir={tmp_path}", "data.corpus=x", "optim.schedule=cosine", "optim.warmup=10"]
    peer = [
        "peers.a.model.preset=mt_transformer",
        "peers.a.reads=source",
        "peers.a.predicts=target",
    ]
    with pytest.warns(UserWarning, match=r"optim.total \(100\) is not train.max_steps \(200\)"):
        load_config(Experiment, None, [*base, *peer, "optim.total=100", "train.max_steps=200"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(Experiment, None, [*base, *peer, "optim.total=200", "train.max_steps=200"])
