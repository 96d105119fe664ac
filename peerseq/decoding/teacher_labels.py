"""Sequence-level KD from a frozen teacher: its transcripts of the training set, decoded once
and cached on disk under a hash of the teacher's weights, so a changed teacher is never
silently reused. Decoded by `decoding.peer.hypotheses`, the path evaluation takes:
encoder-decoders by beam search, CTC models by prefix beam search (k-best).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from peerseq.data.batching import Batch, pad_tokens
from peerseq.decoding.peer import hypotheses, max_len_a
from peerseq.engine.peer import Peer, is_seq2seq, unwrap
from peerseq.experiment import DecodeConfig, Experiment
from peerseq.files import atomic_write_text


def wanted(exp: Experiment, peers: dict[str, Peer]) -> dict[str, tuple[int, DecodeConfig | None]]:
    """{teacher: (k, its decode settings or None for the default)}: the frozen teachers whose
    hypotheses a run needs cached, for seqkd links (k-best: CTC prefix beam search or beam
    search) and for students trained on a teacher's hypotheses (`train_on_hyps_of`: the 1-best
    of beam search with the teacher's own decode settings)."""
    out: dict[str, tuple[int, DecodeConfig | None]] = {
        link_cfg.a: (link_cfg.k, None)
        for link_cfg in exp.links
        if link_cfg.kind == "seqkd" and link_cfg.cache and not peers[link_cfg.a].trainable
    }
    for peer_cfg in exp.peers.values():
        if peer_cfg.train_on_hyps_of:
            out[peer_cfg.train_on_hyps_of] = (1, exp.peers[peer_cfg.train_on_hyps_of].decode)
    return out


def weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(unwrap(model).state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def teacher_labels(
    peer: Peer,
    batches,
    device: torch.device,
    cache_dir: Path,
    k: int = 1,
    cfg: DecodeConfig | None = None,
) -> dict[str, list[list[int]]]:
    """{utterance id: k-best token lists} for every utterance in batches (cached under the
    teacher's weights hash, k and the decode settings: any change decodes again).

    cfg: the teacher's decode settings (beam, length penalty and limits, as `peerseq decode`
    uses them); default a beam of 8. The beam is at least k."""
    cfg = cfg or DecodeConfig(beam=8)
    cfg = dataclasses.replace(cfg, beam=max(cfg.beam, k))
    settings = f"b{cfg.beam}"
    if is_seq2seq(peer.model):
        settings += f"-lp{cfg.len_penalty}-len{max_len_a(peer, cfg)}x+{cfg.max_len_b}"
    path = Path(cache_dir) / f"{peer.name}-{weights_hash(peer.model)}-k{k}-{settings}.json"
    if path.is_file():
        return json.loads(path.read_text())
    labels: dict[str, list[list[int]]] = {}
    for batch, kbest in hypotheses(peer, batches, cfg, device, k=k):
        labels.update(zip(batch.ids, kbest, strict=True))
    atomic_write_text(path, json.dumps(labels))
    return labels


def attach(batch: Batch, teacher: str, labels: dict[str, list[list[int]]]) -> Batch:
    """Add the teacher's 1-best as batch.tokens[f"hyp:{teacher}"] (read by seqkd links and by
    students trained on the teacher's hypotheses, see Peer.targets) and, when some utterance has
    more than one, its k-best lists as batch.kbest[f"hyp:{teacher}"] (seqkd links with k > 1)."""
    key = f"hyp:{teacher}"
    kbest = [labels[i] for i in batch.ids]
    batch.tokens[key], batch.lengths[key] = pad_tokens([hs[0] for hs in kbest])
    if any(len(hs) > 1 for hs in kbest):
        batch.kbest[key] = kbest
    return batch
