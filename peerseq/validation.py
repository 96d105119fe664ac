"""Validation of a run on its dev split: the objective's terms and each decoded peer's metric,
and early stopping's rule for whether a value is a new best."""

from __future__ import annotations

import dataclasses
import json
import math

import torch

from peerseq.data.pipeline import Data
from peerseq.decoding.peer import Decoded, add_1best, batch_hypotheses
from peerseq.engine.link import Link
from peerseq.engine.objective import objective
from peerseq.engine.peer import Peer, unwrap
from peerseq.experiment import Experiment
from peerseq.files import atomic_dir
from peerseq.metrics.score import higher_is_better, score
from peerseq.rundir.layout import RunDir, weights_file
from peerseq.rundir.weights import save_weights
from peerseq.training_console import early_stop_line


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
    decoders = {  # the peers whose metric is computed: name -> (tokenizer, column, decoded)
        name: (data.tokenizers[p.predicts], exp.data.fields[p.predicts].column, Decoded([], [], []))
        for name, p in plain.items()
        if exp.peers[name].decode.metric != "none"
        and not p.upstream
        and p.predicts in data.tokenizers
    }
    sums, n = {}, 0
    # one pass: each batch is loaded once, and a CTC peer's 1-best comes from the output its
    # loss was computed on (a second forward of every dev batch was half of a CTC validation)
    for batch in data.batches(exp.data.dev_split):
        # no cached teacher labels on dev: a seqkd link decodes the teacher online
        batch = batch.to(device)
        outs = {}
        for name, p in plain.items():
            outs[name] = p.forward(batch, outs)
        for k, v in objective(plain, links, outs, batch, step).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch)
        n += len(batch)
        for name, (tokenizer, column, decoded) in decoders.items():
            hyps = batch_hypotheses(plain[name], batch, exp.peers[name].decode, out=outs[name])
            add_1best(decoded, batch, hyps, tokenizer, column)
    record = {k: v / max(n, 1) for k, v in sums.items() if not k.startswith("w:")}
    for name, (_, _, decoded) in decoders.items():
        metric = exp.peers[name].decode.metric
        record[f"{name}/{metric}"] = score(decoded.refs, decoded.hyps, metric)[0]
    for p in peers.values():
        unwrap(p.model).train(p.trainable)
    return record


def is_new_best(value: float, best: float | None, metric: str) -> bool:
    """A finite value better than the best so far (or the first one)."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if higher_is_better(metric) else value < best)


def early_stopping(
    exp: Experiment, state, record: dict[str, float], layout: RunDir, models: dict, say
) -> None:
    """Track train.early_stop_peer's dev metric in `state` (a run_state.State): keep the best
    weights of `models` (name -> module) in best/, and set state.done after train.patience
    validations without a new best (saying so with `say`)."""
    name, patience = exp.train.early_stop_peer, exp.train.patience
    if name is None:
        return
    metric = exp.peers[name].decode.metric
    value = record[f"{name}/{metric}"]
    state.history.append({"step": state.step, f"{name}/{metric}": value})
    if is_new_best(value, state.best, metric):
        state.best, state.best_step, state.since_best = value, state.step, 0
        # written beside and renamed: best/ never mixes the weights of two steps
        with atomic_dir(layout.best) as tmp:
            for peer, model in models.items():
                save_weights(weights_file(tmp, peer), model.state_dict())
            kept = {"step": state.step, "peer": name, "metric": metric, "value": value}
            (tmp / layout.best_record.name).write_text(json.dumps(kept))
    else:
        state.since_best += 1
        if patience is not None and state.since_best >= patience:
            state.done = True
            say(early_stop_line(name, metric, patience, state))
