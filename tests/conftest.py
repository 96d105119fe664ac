"""Shared fixtures: small real audio and text made from the bundled corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from peerseq.paths import bundled_data_dir

# Two cores are shared by everything here; one intra-op thread keeps tests predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bundled() -> Path:
    return bundled_data_dir()


@pytest.fixture
def fsdd_copy(tmp_path: Path, bundled: Path) -> Path:
    """A copy of 40 FSDD recordings (every speaker, digits 0-1, indices 0-3 and 10-11)."""
    dst = tmp_path / "fsdd" / "recordings"
    dst.mkdir(parents=True)
    for spk in ("george", "jackson", "nicolas", "theo", "yweweler"):
        for digit in (0, 1):
            for idx in (0, 3, 7, 11):
                name = f"{digit}_{spk}_{idx}.wav"
                shutil.copy(bundled / "fsdd" / "recordings" / name, dst / name)
    return dst.parent


@pytest.fixture(scope="session")
def m30k_speech_300(tmp_path_factory) -> Path:
    """multi30k-speech, first 300 sentences of each split, vocabularies of (at most) 1000: the
    corpus of recipes/smoke/st*.yaml and of the paper-000 recipe at tiny scale. Made once."""
    from peerseq.data.prepare import PrepareArgs, prepare

    out = tmp_path_factory.mktemp("data") / "multi30k-speech-300"
    prepare(PrepareArgs("multi30k-speech", out, limit=300, vocab_size=1000))
    return out


@pytest.fixture(scope="session")
def m30k_64(tmp_path_factory) -> Path:
    """multi30k, first 64 sentences, vocabularies of 200: the corpus of tests/test_train.py's
    write_config, of tests/test_run_safety.py and of tests/test_ddp.py. Made once; runs only
    read it."""
    from peerseq.data.prepare import PrepareArgs, prepare

    out = tmp_path_factory.mktemp("data") / "multi30k-64"
    prepare(PrepareArgs("multi30k", out, limit=64, vocab_size=200))
    return out


@pytest.fixture(scope="session")
def whole_run(m30k_64, tmp_path_factory) -> Path:
    """An uninterrupted run of write_config's settings for two epochs (18 steps, checkpoints
    at steps 4, 8, 9 (epoch end), 12, 16, 18), logging every step: what every interrupted and
    resumed run must end as (weights and metrics records). Trained once."""
    from peerseq.config import load_config
    from peerseq.experiment import Experiment
    from peerseq.train import train
    from tests.test_train import write_config

    folder = tmp_path_factory.mktemp("whole")
    cfg = write_config(folder, m30k_64, folder / "whole", log_every=1, max_epochs=2)
    assert train(load_config(Experiment, cfg, [])).step == 18
    return folder / "whole"


@pytest.fixture(scope="session")
def m30k_32(tmp_path_factory) -> Path:
    """multi30k, first 32 sentences, vocabularies of 150: the corpus of
    tests/engine/helpers.py's mt_experiment. Made once; runs only read it."""
    from peerseq.data.prepare import PrepareArgs, prepare

    out = tmp_path_factory.mktemp("data") / "multi30k-32"
    prepare(PrepareArgs("multi30k", out, limit=32, vocab_size=150))
    return out
