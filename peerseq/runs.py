"""A finished (or running) training run, reloaded for decoding, evaluation and averaging."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from peerseq.build import Data, build_peers
from peerseq.config import load_config
from peerseq.distributed import pick_device
from peerseq.engine.checkpoint import (
    average_checkpoints,
    latest_checkpoint,
    list_checkpoints,
    load_weights,
    save_weights,
)
from peerseq.engine.peer import Peer
from peerseq.errors import PeerseqError
from peerseq.evaluate import Decoded, decode_peer, score
from peerseq.experiment import Experiment


@dataclass
class Run:
    dir: Path
    exp: Experiment
    data: Data
    peers: dict[str, Peer]
    device: torch.device


def weights_dir(run_dir: Path, which: str) -> Path:
    """best: the early-stopping best; last: the latest checkpoint; averaged: `peerseq average`."""
    if which == "last":
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise PeerseqError(f"{run_dir}: no checkpoint yet")
        return ckpt
    folder = run_dir / which
    if not folder.is_dir():
        raise PeerseqError(f"{run_dir}: no '{which}' weights (have: best, last, averaged?)")
    return folder


def load_run(run_dir: str | Path, which: str = "best", device: str = "auto") -> Run:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise PeerseqError(f"{run_dir}: not a run directory (no config.yaml)")
    exp = load_config(Experiment, run_dir / "config.yaml", [])
    for pc in exp.peers.values():  # the run's own weights replace any initialisation
        pc.model.init_from = pc.model.init_encoder_from = None
    if which == "best" and not (run_dir / "best").is_dir():
        which = "last"  # no early stopping configured: the final weights
    data = Data(exp.data, exp.train.seed)
    peers = build_peers(exp, data)
    folder = weights_dir(run_dir, which)
    dev = pick_device(device)
    for name, peer in peers.items():
        path = folder / f"model.{name}.safetensors"
        if not path.is_file():
            raise PeerseqError(f"{folder}: no weights for peer '{name}' ({path.name})")
        peer.model.load_state_dict(load_weights(path))
        peer.model.to(dev).eval()
    return Run(run_dir, exp, data, peers, dev)


def decode_split(run: Run, peer: str, split: str, beam: int | None = None) -> Decoded:
    if peer not in run.peers:
        raise PeerseqError(f"{run.dir}: no peer '{peer}' (peers: {', '.join(run.peers)})")
    p, cfg = run.peers[peer], run.exp.peers[peer].decode
    if p.upstream:
        raise PeerseqError(f"peer '{peer}' reads '{p.reads}' (teacher mode): decode '{p.upstream}'")
    if beam is not None:
        cfg = dataclasses.replace(cfg, beam=beam)
    column = run.exp.data.fields[p.predicts].column
    return decode_peer(
        p, run.data.batches(split), run.data.tokenizers[p.predicts], column, cfg, run.device
    )


def evaluate_run(run: Run, split: str) -> dict[str, dict]:
    """{peer: {"metric", "score", "signature", "n"}} for every peer that decodes; also
    written to RUN/eval/{split}.json with the hypotheses beside it."""
    out = {}
    folder = run.dir / "eval"
    folder.mkdir(exist_ok=True)
    for name, peer in run.peers.items():
        metric = run.exp.peers[name].decode.metric
        if metric == "none" or peer.upstream:
            continue
        decoded = decode_split(run, name, split)
        value, signature = score(decoded, metric)
        out[name] = {
            "metric": metric,
            "score": value,
            "signature": signature,
            "n": len(decoded.ids),
        }
        (folder / f"{name}.{split}.hyp").write_text("\n".join(decoded.hyps) + "\n")
    (folder / f"{split}.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def average_run(run_dir: str | Path, last: int) -> Path:
    """Mean of the last N checkpoints' weights for every peer -> RUN/averaged/."""
    run_dir = Path(run_dir)
    ckpts = list_checkpoints(run_dir)[-last:]
    if not ckpts:
        raise PeerseqError(f"{run_dir}: no checkpoints to average")
    folder = run_dir / "averaged"
    folder.mkdir(exist_ok=True)
    peers = sorted(p.name[len("model.") : -len(".safetensors")] for p in ckpts[-1].glob("model.*"))
    for peer in peers:
        save_weights(folder / f"model.{peer}.safetensors", average_checkpoints(ckpts, peer))
    (folder / "from.json").write_text(json.dumps([c.name for c in ckpts]) + "\n")
    return folder
