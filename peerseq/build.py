"""From an Experiment config to what the loop trains: peers (models from the one preset table,
peerseq.models.presets, initialised from earlier runs where asked), links and the checks that
refuse combinations the engine does not support."""

from __future__ import annotations

import os

from torch import nn

from peerseq.data.pipeline import Data
from peerseq.engine.link import Link
from peerseq.engine.peer import Peer, is_seq2seq, unwrap
from peerseq.engine.schedules import make_schedule
from peerseq.errors import PeerseqError
from peerseq.experiment import Experiment, LinkConfig, ModelConfig
from peerseq.models import presets
from peerseq.models.loading import load_encoder
from peerseq.rundir.checkpoint import peer_weights_file
from peerseq.rundir.weights import load_weights


def reads_speech(exp: Experiment) -> bool:
    """Whether any peer reads audio; if none does, batches carry text only."""
    return any(peer_cfg.reads == "speech" for peer_cfg in exp.peers.values())


def build_model(
    cfg: ModelConfig, data: Data, reads: str, predicts: str, built: dict[str, Peer]
) -> nn.Module:
    vocab = data.tokenizers[predicts].vocab_size
    if cfg.same_as:
        if cfg.same_as not in built:
            raise PeerseqError(f"model.same_as: no earlier peer '{cfg.same_as}'")
        return built[cfg.same_as].model
    upstream = None
    if reads.startswith("@"):
        if reads[1:] not in built:
            raise PeerseqError(f"reads '{reads}': no earlier peer '{reads[1:]}'")
        upstream = unwrap(built[reads[1:]].model)
    overrides = dict(cfg.overrides)
    if cfg.mask_prob:  # model.mask_prob: EM-Network's lambda, a field of its preset
        if not presets.has_field(cfg.preset, "mask_prob"):
            raise PeerseqError(f"model.mask_prob: preset '{cfg.preset}' masks no target")
        overrides["mask_prob"] = cfg.mask_prob
    # text peers read token ids: only speech peers have a feature dimension
    feats = {"src_feats": data.feature_dim()} if reads == "speech" else {}
    model = presets.build(
        cfg.preset,
        cfg.size,
        **feats,
        vocab=vocab,
        src_vocab=data.tokenizers[reads].vocab_size if reads in data.tokenizers else None,
        upstream=upstream,
        **overrides,
    )
    for attr, other in cfg.share.items():
        if other not in built or not hasattr(unwrap(built[other].model), attr):
            raise PeerseqError(f"model.share: no submodule '{attr}' in an earlier peer '{other}'")
        mine, theirs = getattr(model, attr, None), getattr(unwrap(built[other].model), attr)
        if mine is not None and _shapes(mine) != _shapes(theirs):
            raise PeerseqError(f"model.share: '{attr}' of '{other}' has other shapes than ours")
        setattr(model, attr, theirs)
    if cfg.init_from:
        model.load_state_dict(load_weights(peer_weights_file(cfg.init_from)))
    parts = (
        ("init_encoder_from", "encoder.", "frontend."),
        ("init_decoder_from", "decoder.", "output_layer."),  # a tied output layer: no keys
    )
    for key, prefix, second in parts:
        spec = getattr(cfg, key)
        if spec:
            try:
                weights = load_weights(peer_weights_file(spec, f"model.{key}"))
                load_encoder(model, weights, prefix=prefix, frontend_prefix=second)
            except ValueError as e:
                raise PeerseqError(f"model.{key} '{spec}': {e}") from None
    return model


def _shapes(module: nn.Module) -> list[tuple]:
    return [tuple(p.shape) for p in module.parameters()]


def build_peers(exp: Experiment, data: Data) -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    for name, peer_cfg in exp.peers.items():
        for f in (peer_cfg.reads, peer_cfg.predicts, peer_cfg.reads_also):
            if f not in (None, "speech") and not f.startswith("@") and f not in data.tokenizers:
                raise PeerseqError(f"peers.{name}: field '{f}' is not in data.fields")
        try:
            model = build_model(peer_cfg.model, data, peer_cfg.reads, peer_cfg.predicts, peers)
        except ValueError as e:  # presets: unknown preset, size or override field
            raise PeerseqError(f"peers.{name}.model: {e}") from None
        peers[name] = Peer(
            name,
            model,
            peer_cfg.reads,
            peer_cfg.predicts,
            peer_cfg.loss,
            peer_cfg.loss_weight,
            peer_cfg.label_smoothing,
            peer_cfg.trainable,
            peer_cfg.reads_also,
            peer_cfg.train_on_hyps_of,
        )
    return peers


def check_method(exp: Experiment, peers: dict[str, Peer]) -> None:
    """Combinations the engine does not support, refused before training starts."""
    readers = [n for n, p in peers.items() if p.upstream]
    if exp.train.update == "alternating" and readers:
        raise PeerseqError(
            f"train.update: alternating cannot train peers that read another peer's output "
            f"({', '.join(readers)}): their graphs share parameters; use joint"
        )
    for i, link_cfg in enumerate(exp.links):
        if link_cfg.kind == "seqkd" and is_seq2seq(peers[link_cfg.b].model):
            raise PeerseqError(
                f"links.{i}: seqkd to an encoder-decoder student ({link_cfg.b}) is not supported "
                "yet: its output is teacher-forced on the reference, not on the hypotheses"
            )
        if link_cfg.kind == "seqkd" and not link_cfg.cache and is_seq2seq(peers[link_cfg.a].model):
            raise PeerseqError(f"links.{i}: online seqkd needs a CTC teacher; set cache: true")
    for name, peer_cfg in exp.peers.items():
        if peer_cfg.model.same_as and not peer_cfg.trainable:
            raise PeerseqError(
                f"peers.{name}: a same_as peer is {peer_cfg.model.same_as}'s model; freezing it "
                f"would freeze {peer_cfg.model.same_as} too"
            )
        if (peer_cfg.model.same_as or peer_cfg.model.share) and exp.train.update == "alternating":
            raise PeerseqError(
                f"peers.{name} shares parameters with another peer: alternating updates would "
                "step them on one peer's turn with gradients from another's; use joint"
            )
        teacher = peer_cfg.train_on_hyps_of
        if teacher is None:
            continue
        if teacher in exp.peers and exp.peers[teacher].predicts != peer_cfg.predicts:
            raise PeerseqError(
                f"peers.{name}.train_on_hyps_of: '{teacher}' predicts "
                f"'{exp.peers[teacher].predicts}', {name} predicts '{peer_cfg.predicts}': the "
                "hypotheses must be in the student's vocabulary"
            )
        if teacher not in peers or peers[teacher].trainable:
            raise PeerseqError(
                f"peers.{name}.train_on_hyps_of: '{teacher}' must be a frozen peer "
                "(trainable: false) whose hypotheses are decoded once"
            )
        if not is_seq2seq(peers[name].model) or not is_seq2seq(peers[teacher].model):
            raise PeerseqError(
                f"peers.{name}.train_on_hyps_of: student and teacher must be encoder-decoders "
                "(for CTC students use a seqkd link)"
            )
    shared = [
        n for n, peer_cfg in exp.peers.items() if peer_cfg.model.share or peer_cfg.model.same_as
    ]
    if shared and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise PeerseqError(
            f"peers {', '.join(shared)} share modules: not supported under DDP yet (each peer's "
            "DDP wrapper would all-reduce the shared gradients again)"
        )
    name = exp.train.early_stop_peer
    if name is not None:
        if name not in peers:
            raise PeerseqError(f"train.early_stop_peer: no peer '{name}'")
        if exp.peers[name].decode.metric == "none" or peers[name].upstream:
            raise PeerseqError(f"train.early_stop_peer: peer '{name}' is not decoded")
    elif exp.train.patience is not None:
        raise PeerseqError("train.patience needs train.early_stop_peer")


def build_links(exp: Experiment) -> list[Link]:
    links = []
    for i, link_cfg in enumerate(exp.links):
        for side in (link_cfg.a, link_cfg.b):
            if side not in exp.peers:
                raise PeerseqError(f"links.{i}: unknown peer '{side}' (peers: {list(exp.peers)})")
        links.append(
            Link(
                link_cfg.a,
                link_cfg.b,
                link_cfg.kind,
                schedule(link_cfg),
                link_cfg.temperature,
                link_cfg.grad,
                link_cfg.name,
            )
        )
    return links


def schedule(link_cfg: LinkConfig):
    """A link's weight schedule, through the one table in peerseq.engine.schedules."""
    params = {"cyclical": {"R": link_cfg.R, "C": link_cfg.C}, "warmup": {"steps": link_cfg.warmup}}
    return make_schedule(
        {
            "type": link_cfg.schedule,
            "value": link_cfg.weight,
            "start": link_cfg.start,
            **params.get(link_cfg.schedule, {}),
        }
    )
