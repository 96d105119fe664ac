"""A run started from another run's weights records which weights: the name it gave and the
SHA-256 of the file that name resolved to, in its `start` record; a name that later stands for
other weights (its run trained again) gives another hash."""

from __future__ import annotations

import json
import shutil

from peerseq.config import load_config
from peerseq.experiment import Experiment
from peerseq.rundir.checkpoint import peer_weights_file
from peerseq.rundir.provenance import initial_weights
from peerseq.rundir.weights import weights_sha256
from peerseq.train import train
from tests.test_train import write_config


def test_the_start_record_names_the_weights_a_peer_started_from(tmp_path, m30k_64, whole_run):
    shared = tmp_path / "shared"  # a copy: the session's whole_run is read by other tests
    shutil.copytree(whole_run, shared)
    cfg = write_config(tmp_path, m30k_64, tmp_path / "student", max_epochs=1, max_steps=2)
    exp = load_config(Experiment, cfg, [f"peers.mt.model.init_from={shared}:mt"])
    train(exp)
    rows = [
        json.loads(x) for x in (tmp_path / "student" / "metrics.jsonl").read_text().splitlines()
    ]
    start = next(r for r in rows if r["split"] == "start")
    file = peer_weights_file(f"{shared}:mt")
    assert start["init"] == {
        "mt.init_from": {"from": f"{shared}:mt", "sha256": weights_sha256(file)}
    }
    assert len(start["init"]["mt.init_from"]["sha256"]) == 64

    # the shared run trained again under its name: same name, other weights, another hash
    before = initial_weights(exp.peers)
    data = bytearray(file.read_bytes())
    data[-1] ^= 1
    file.write_bytes(bytes(data))
    after = initial_weights(exp.peers)
    assert after["mt.init_from"]["from"] == before["mt.init_from"]["from"]
    assert after["mt.init_from"]["sha256"] != before["mt.init_from"]["sha256"]


def test_a_run_from_scratch_records_no_init(tmp_path, m30k_64):
    cfg = write_config(tmp_path, m30k_64, tmp_path / "plain")
    assert initial_weights(load_config(Experiment, cfg, []).peers) == {}
