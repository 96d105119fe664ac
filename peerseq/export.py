"""`peerseq export RUN --peer seq --out DIR`: one peer of a trained run as a standalone model.

The export is itself a one-peer run directory (config.yaml + best/model.PEER.safetensors), so
every command that reads runs (decode, evaluate, cascade) reads it unchanged. Everything the
peer did not own is left behind: the other peers, the links, teachers, and EM-Network's
auxiliary network, which exists only for training (paper 002, 2.2: "the auxiliary network is
removed during the inference"). Modules the peer shared with another (model.share, same_as)
become its own. Tokenizers and CMVN statistics stay in the prepared corpus the config names.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

from peerseq.config import save_config
from peerseq.errors import PeerseqError
from peerseq.files import atomic_write_text
from peerseq.metrics.cost import count_parameters
from peerseq.rundir.layout import RunDir, weights_file
from peerseq.rundir.weights import save_weights
from peerseq.runs import load_run


def export_peer(run_dir: str | Path, peer: str, out: str | Path, which: str = "best") -> dict:
    """Write DIR/config.yaml, DIR/best/model.PEER.safetensors and DIR/export.json; -> the
    export.json record (source, peer, weights, parameters)."""
    run = load_run(run_dir, which, device="cpu")
    if peer not in run.peers:
        raise PeerseqError(f"{run.dir}: no peer '{peer}' (peers: {', '.join(run.peers)})")
    p = run.peers[peer]
    if p.upstream:
        raise PeerseqError(
            f"peer '{peer}' reads peer '{p.upstream}''s output: it is a training-time part (e.g. "
            f"EM-Network's auxiliary network); export '{p.upstream}' instead"
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PeerseqError(f"--out {out}: exists and is not empty; export into a new directory")
    peer_cfg = copy.deepcopy(run.exp.peers[peer])
    while peer_cfg.model.same_as:  # a second view of another peer's model (R-Drop): that model's
        peer_cfg.model = copy.deepcopy(run.exp.peers[peer_cfg.model.same_as].model)  # own config
    peer_cfg.model.share, peer_cfg.model.same_as = {}, None
    peer_cfg.model.init_from = peer_cfg.model.init_encoder_from = (
        peer_cfg.model.init_decoder_from
    ) = None
    peer_cfg.trainable, peer_cfg.train_on_hyps_of, peer_cfg.optim = True, None, None
    exp = dataclasses.replace(
        run.exp,
        out_dir=str(out),
        peers={peer: peer_cfg},
        links=[],
        data=dataclasses.replace(run.exp.data, corpus=str(Path(run.exp.data.corpus).resolve())),
        train=dataclasses.replace(run.exp.train, early_stop_peer=None),
    )
    fields = {f for f in (peer_cfg.reads, peer_cfg.predicts) if f != "speech"}
    exp.data.fields = {k: v for k, v in run.exp.data.fields.items() if k in fields}
    layout = RunDir(out)
    layout.best.mkdir(parents=True, exist_ok=True)
    save_config(exp, layout.config)
    save_weights(weights_file(layout.best, peer), p.model.state_dict())
    record = {
        "source": str(run.dir),
        "peer": peer,
        "weights": which,
        "parameters": count_parameters(p.model),
        "left_out": sorted(set(run.peers) - {peer}),
    }
    atomic_write_text(layout.export_record, json.dumps(record, indent=2) + "\n")
    return record
