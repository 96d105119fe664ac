"""Device and precision choices (peerseq.distributed)."""

import contextlib

import pytest
import torch

from peerseq.distributed import autocast_factory, cpu_bf16_supported


def test_bf16_on_cpu_follows_what_onednn_says(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_factory(cpu, False) is contextlib.nullcontext
    if cpu_bf16_supported():
        with autocast_factory(cpu, True)():
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    monkeypatch.setattr("peerseq.distributed.cpu_bf16_supported", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16"):
        assert autocast_factory(cpu, True) is contextlib.nullcontext
