"""The objective: peers' own losses and the links between them, as one dict of named terms.

Logging reads the same dict, so what is optimised is what is printed:
    {"st/nll": .., "mt/nll": .., "kl(mt||st)": .., "kl(st||mt)": .., "beta": .., "total": ..}
Terms are tensors; weights (schedule values) are floats.
"""

from __future__ import annotations

import torch

from peerseq.data.batching import Batch
from peerseq.engine.link import Link
from peerseq.engine.peer import Peer
from peerseq.models.output import SeqOutput


def objective(
    peers: dict[str, Peer],
    links: list[Link],
    outputs: dict[str, SeqOutput],
    batch: Batch,
    step: int,
    for_peer: str | None = None,
) -> dict[str, torch.Tensor | float]:
    """total = sum_p w_p * L_p + sum_links weight(step) * term.

    for_peer: only the terms through which that peer receives gradient (its own loss and the
    links that reach it): the objective of one peer's turn in the alternating update. Frozen
    peers have no loss of their own.
    """
    terms: dict[str, torch.Tensor | float] = {}
    total = None

    def add(name, value, weight):
        nonlocal total
        terms[name] = value
        total = weight * value if total is None else total + weight * value

    for name, peer in peers.items():
        if not peer.trainable or (for_peer is not None and name != for_peer):
            continue
        loss = peer.supervised_loss(outputs[name], batch)
        if loss is not None:
            add(f"{name}/{peer.loss}", loss, peer.loss_weight)
    for link in links:
        if for_peer is not None and not link.receives_grad(for_peer):
            continue
        w = link.weight(step)
        link_terms = link.terms(outputs, batch)
        terms[link.name or f"w:{next(iter(link_terms))}"] = w
        for name, value in link_terms.items():
            add(name, value, w)
    terms["total"] = total if total is not None else torch.zeros(())
    return terms
