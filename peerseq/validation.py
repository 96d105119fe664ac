"""Validation of a run on its dev split: the objective's terms and each decoded peer's metric,
and early stopping's rule for whether a value is a new best."""

from __future__ import annotations

import dataclasses
import math

import torch

from peerseq.data.pipeline import Data
from peerseq.decoding.peer import decode_peer
from peerseq.engine.link import Link
from peerseq.engine.objective import objective
from peerseq.engine.peer import Peer, unwrap
from peerseq.experiment import Experiment
from peerseq.metrics.score import higher_is_better, score


@torch.no_grad()
def dev_record(
    exp: Experiment,
    data: Data,
    peers: dict[str, Peer],
    links: list[Link],
    step: int,
    device: torch.device,
) -> dict[str, float]:
    """{term: mean over dev utterances} of the objective (schedule weights left out) and
    {"PEER/METRIC": score} for every peer that decodes. Models are in eval mode meanwhile and put
    back in train mode if trainable."""
    for p in peers.values():
        unwrap(p.model).eval()
    # the plain models, not their DDP wrappers: only one rank validates, and a DDP forward
    # could start a collective (buffer broadcast) the other ranks never join
    plain = {n: dataclasses.replace(p, model=unwrap(p.model)) for n, p in peers.items()}
    sums, n = {}, 0
    for batch in data.batches(exp.data.dev_split):
        # no cached teacher labels on dev: a seqkd link decodes the teacher online
        batch = batch.to(device)
        outs = {}
        for name, p in plain.items():
            outs[name] = p.forward(batch, outs)
        for k, v in objective(plain, links, outs, batch, step).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch)
        n += len(batch)
    record = {k: v / max(n, 1) for k, v in sums.items() if not k.startswith("w:")}
    for name, peer in plain.items():
        decode = exp.peers[name].decode
        if decode.metric == "none" or peer.upstream or peer.predicts not in data.tokenizers:
            continue
        column = exp.data.fields[peer.predicts].column
        tokenizer = data.tokenizers[peer.predicts]
        decoded = decode_peer(
            peer, data.batches(exp.data.dev_split), tokenizer, column, decode, device
        )
        record[f"{name}/{decode.metric}"] = score(decoded.refs, decoded.hyps, decode.metric)[0]
    for p in peers.values():
        unwrap(p.model).train(p.trainable)
    return record


def is_new_best(value: float, best: float | None, metric: str) -> bool:
    """A finite value better than the best so far (or the first one)."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if higher_is_better(metric) else value < best)
