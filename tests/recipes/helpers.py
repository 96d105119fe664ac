"""Running a recipe's reproduce in this process (no interpreter start-ups), and reading what its
runs wrote."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from peerseq.cli import train_run
from peerseq.report.recipe import load_recipe
from peerseq.report.reproduce import Request, plan
from peerseq.report.reproduce import reproduce as run_reproduce
from peerseq.rundir.checkpoint import latest_checkpoint
from peerseq.rundir.weights import load_weights

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def reproduce(recipe: str, **request) -> list[dict]:
    """peerseq reproduce recipes/RECIPE with Request fields -> what was done to each run."""
    return run_reproduce(load_recipe(RECIPES / recipe), Request(**request), train_run)


def run_args(recipe: str, name: str, seed: int = 1, **request) -> tuple[Path, Path, list[str]]:
    """(run directory, config, overrides) reproduce would train a run with (nothing trained)."""
    return plan(load_recipe(RECIPES / recipe), Request(**request)).args(name, seed)


def experiment(recipe: str, name: str, seed: int = 1, **request):
    """The run's experiment as reproduce would configure it (loaded, checked, not trained)."""
    from peerseq.config import load_config
    from peerseq.experiment import Experiment

    return load_config(Experiment, *run_args(recipe, name, seed, **request)[1:])


def records(run: Path, split: str = "train") -> list[dict]:
    """The run's metrics.jsonl rows of one split ("train", "dev", "epoch")."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == split]


def weights(run: Path, peer: str) -> dict[str, torch.Tensor]:
    """A peer's weights: best/ if the run kept one, else its latest checkpoint."""
    folder = run / "best" if (run / "best").is_dir() else latest_checkpoint(run)
    return load_weights(folder / f"model.{peer}.safetensors")


def stamps(root: Path) -> dict[Path, int]:
    """Modification times of every weights, log and decoded-output file under root."""
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".jsonl")]
    return {p: p.stat().st_mtime_ns for p in files if p.name != "reproduce.jsonl"}


def paper_step(config: Path, overrides: list[str]) -> dict:
    """Build a run's peers as the config says and take one forward/backward on two training
    utterances (no trainer, no checkpoint): -> the experiment, the loss, each peer's parameter
    count, the parameters two peers hold in common ("peer:name") and the count of distinct ones."""
    from peerseq.build import build_peers, reads_speech
    from peerseq.config import load_config
    from peerseq.data.pipeline import Data
    from peerseq.experiment import Experiment

    exp = load_config(Experiment, config, overrides)
    for pc in exp.peers.values():  # the teachers' runs are not trained here
        pc.model.init_from = pc.model.init_encoder_from = pc.model.init_decoder_from = None
    exp.data.limit_train = 2
    data = Data(exp.data, exp.train.seed, speech=reads_speech(exp))
    peers = build_peers(exp, data)
    batch = next(iter(data.batches(exp.data.train_split)))
    outs, loss = {}, torch.zeros(())
    for name, peer in peers.items():
        if not peer.trainable:  # a frozen teacher: built (its size checked), not run
            continue
        outs[name] = peer.forward(batch, outs)
        term = peer.supervised_loss(outs[name], batch)
        loss = loss + (term if term is not None else 0.0)
    loss.backward()
    n = {name: sum(p.numel() for p in peer.model.parameters()) for name, peer in peers.items()}
    owners: dict[int, list[str]] = {}
    unique = {}
    for name, peer in peers.items():
        for pname, p in peer.model.named_parameters():
            owners.setdefault(id(p), []).append(f"{name}:{pname}")
            unique[id(p)] = p.numel()
    shared = sorted(n for names in owners.values() if len(names) > 1 for n in names)
    return {"exp": exp, "loss": float(loss.detach()), "parameters": n, "shared": shared,
            "unique": sum(unique.values())}  # fmt: skip
