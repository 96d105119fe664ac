"""`peerseq export RUN --peer seq --out DIR`: one peer of a trained run as a standalone model.

The export is itself a one-peer run directory (config.yaml + best/model.PEER.safetensors), so
every command that reads runs (decode, evaluate, cascade, transcribe, translate) reads it
unchanged. Everything the peer did not own is left behind: the other peers, the links, teachers,
and EM-Network's auxiliary network, which exists only for training (paper 002, 2.2: "the
auxiliary network is removed during the inference"). Modules the peer shared with another
(model.share, same_as) become its own.

It is self-contained: its tokenizers are copied into DIR/tokenizers/ and its config names DIR
itself as the corpus (data.corpus "."; DIR/corpus.json says what it was exported from), and the
features are named in the config (kind, per-utterance CMVN: no statistics to carry). Copied to
another machine it runs as it is. DIR/README.md is its model card.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

from peerseq.config import save_config
from peerseq.errors import PeerseqError
from peerseq.files import atomic_write_bytes, atomic_write_text
from peerseq.metrics.cost import count_parameters
from peerseq.rundir.layout import RunDir, weights_file
from peerseq.rundir.weights import save_weights
from peerseq.runs import load_run


def export_peer(
    run_dir: str | Path, peer: str, out: str | Path, which: str = "best", onnx: bool = False
) -> dict:
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
        data=dataclasses.replace(run.exp.data, corpus=".", prepare={}),
        train=dataclasses.replace(run.exp.train, early_stop_peer=None),
    )
    fields = {f for f in (peer_cfg.reads, peer_cfg.predicts) if f != "speech"}
    exp.data.fields = {k: v for k, v in run.exp.data.fields.items() if k in fields}
    layout = RunDir(out)
    layout.best.mkdir(parents=True, exist_ok=True)
    save_config(exp, layout.config)
    save_weights(weights_file(layout.best, peer), p.model.state_dict())
    corpus = Path(run.exp.data.corpus)
    for name in sorted({f.tokenizer for f in exp.data.fields.values()}):
        for src in (corpus / "tokenizers").glob(f"{name}.*"):
            (out / "tokenizers").mkdir(exist_ok=True)
            atomic_write_bytes(out / "tokenizers" / src.name, src.read_bytes())
    meta = run.data.meta
    atomic_write_text(
        out / "corpus.json",
        json.dumps(
            {
                "kind": meta["kind"],
                "splits": [],
                "name": meta.get("name"),
                "exported_from": str(corpus),
            },
            indent=2,
        )
        + "\n",
    )
    record = {
        "source": str(run.dir),
        "peer": peer,
        "weights": which,
        "parameters": count_parameters(p.model),
        "left_out": sorted(set(run.peers) - {peer}),
        "reads": peer_cfg.reads,
    }
    if onnx:
        record["onnx"] = _onnx(p, run, out)
    atomic_write_text(layout.export_record, json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / "README.md", model_card(run, peer, exp, record))
    return record


def _onnx(p, run, out: Path) -> list[str]:
    """The ONNX graphs of the peer's inference path (peerseq.onnx_export) -> their names."""
    import torch

    from peerseq.engine.peer import is_seq2seq
    from peerseq.onnx_export import ONNX_NAME, export_ctc, export_seq2seq

    speech = p.reads == "speech"
    if not is_seq2seq(p.model):
        if not speech:
            raise PeerseqError(f"--format onnx: peer '{p.name}' reads text with CTC: not supported")
        export_ctc(p.model, run.data.feature_dim(), out / ONNX_NAME)
        return [ONNX_NAME]
    src = torch.randn(2, 200, run.data.feature_dim()) if speech else torch.full((2, 12), 5)
    return export_seq2seq(p.model, src, out)


def model_card(run, peer: str, exp, record: dict) -> str:
    """A short README for the export: what it is, what it was trained on, how it scored, and
    the commands that use it."""
    cfg = exp.peers[peer]
    model = cfg.model
    meta = run.data.meta
    lines = [
        f"# {peer}: {model.preset} ({model.size})",
        "",
        f"Exported by `peerseq export {record['source']} --peer {peer} --weights "
        f"{record['weights']}`: {record['parameters']:,} parameters; reads "
        f"{cfg.reads}, predicts {exp.data.fields[cfg.predicts].column}"
        f" ({'CTC' if cfg.loss == 'ctc' else 'encoder-decoder'}).",
        "",
        "## Training data",
        "",
        f"Corpus `{meta.get('name')}` ({run.exp.data.corpus}), split `{run.exp.data.train_split}`"
        + (f", first {run.exp.data.limit_train} utterances" if run.exp.data.limit_train else "")
        + f"; features {exp.data.features}, per-utterance CMVN {exp.data.cmvn}.",
        "",
        "## Scores",
        "",
    ]
    layout = RunDir(run.dir)
    scores = []
    if layout.best_record.is_file():
        b = json.loads(layout.best_record.read_text())
        scores.append(f"- best dev {b['peer']}/{b['metric']} {b['value']:.2f} at step {b['step']}")
    for path in sorted(layout.eval.glob("*.json")) if layout.eval.is_dir() else []:
        got = json.loads(path.read_text()).get(peer)
        if isinstance(got, dict) and "score" in got:
            scores.append(
                f"- {path.stem}: {got['metric']} {got['score']:.2f} ({got.get('n', '?')} items)"
            )
    lines += scores or ["- none recorded in the run"]
    verb = "transcribe" if cfg.reads == "speech" and cfg.loss == "ctc" else "translate"
    arg = "AUDIO_OR_FOLDER" if cfg.reads == "speech" else '--text "a sentence"'
    lines += ["", "## Use", "", f"    peerseq {verb} THIS_FOLDER {arg}", ""]
    return "\n".join(lines)
