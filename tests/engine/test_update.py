"""The guard against non-finite steps in peerseq.engine.optim.Optimisation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peerseq.engine.optim import Optimisation
from peerseq.engine.update import _backward


def setup(clip_norm):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, Optimisation({"m": opt}, {"m": sched}, clip_norm=clip_norm)


def good_step(model, o):
    _backward(model(torch.ones(4, 3)).pow(2).mean(), o)
    o.step(["m"])


@pytest.mark.parametrize("clip_norm", [None, 1.0])
@pytest.mark.parametrize("fault", ["loss", "grad"])
def test_a_non_finite_step_changes_nothing(clip_norm, fault):
    model, o = setup(clip_norm)
    good_step(model, o)
    assert o.take_skipped() == []
    weights = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(o.optimisers["m"].state_dict())
    lr_step = o.schedulers["m"].last_epoch
    if fault == "loss":
        loss = model(torch.ones(4, 3)).sum() * float("nan")
    else:  # a finite loss whose gradient overflows
        loss = model(torch.full((4, 3), 3e38)).sum()
    _backward(loss, o)
    o.step(["m"])
    assert o.take_skipped() == ["m"] and o.take_skipped() == []
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    after = o.optimisers["m"].state_dict()
    assert after["state"][0]["step"] == opt_state["state"][0]["step"]
    assert torch.equal(after["state"][0]["exp_avg"], opt_state["state"][0]["exp_avg"])
    assert o.schedulers["m"].last_epoch == lr_step
    assert all(p.grad is None for p in model.parameters())
    good_step(model, o)  # the next good step updates again
    assert o.take_skipped() == [] and not torch.equal(model.weight, weights["weight"])


def test_every_rank_decides_alike():
    """`agree` stands for the all-reduce: one rank's bad loss skips the update on all."""
    model, o = setup(1.0)
    asked = []
    o.agree = lambda bad: asked.append(bad) or True  # another rank had a non-finite loss
    good_step(model, o)
    assert asked == [False] and o.take_skipped() == ["m"]
