"""A finished (or running) training run, reloaded for decoding, evaluation and averaging."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from peerseq.build import build_peers, reads_speech
from peerseq.config import load_config
from peerseq.data.pipeline import Data
from peerseq.decoding.outputs import write_outputs
from peerseq.decoding.peer import Decoded, decode_peer, max_len_a
from peerseq.distributed import pick_device
from peerseq.engine.peer import Peer
from peerseq.errors import PeerseqError
from peerseq.experiment import Experiment
from peerseq.metrics.score import score
from peerseq.rundir.checkpoint import weights_folder
from peerseq.rundir.layout import RunDir, weights_file
from peerseq.rundir.weights import load_weights
from peerseq.search.cascade import cascade


@dataclass
class Run:
    dir: Path
    exp: Experiment
    data: Data
    peers: dict[str, Peer]
    device: torch.device
    weights: str = "best"  # which weights were loaded: best, last, averaged, or a checkpoint


def corpus_of(run_dir: Path, corpus: str) -> Path:
    """The prepared corpus a run's config names: an absolute path as it is; a relative one
    inside the run directory (an export carries its own tokenizers: data.corpus is "."), else
    from the working directory. Never prepared here: a missing corpus is an error."""
    path = Path(corpus)
    if path.is_absolute():
        return path
    for base in (run_dir, Path.cwd()):
        if (base / path / "corpus.json").is_file():
            return (base / path).resolve()
    raise PeerseqError(
        f"{run_dir}: its data.corpus {corpus} is not a prepared corpus relative to the run or to "
        f"the working directory {Path.cwd()}; run from the folder it was trained in, or export "
        "the peer (peerseq export) to get a model that carries what it needs"
    )


def run_corpus(run_dir: str | Path) -> Path:
    """The prepared corpus a run was trained on (corpus_of its config's data.corpus)."""
    run_dir = Path(run_dir)
    return corpus_of(run_dir, load_config(Experiment, RunDir(run_dir).config, []).data.corpus)


def source_corpus(run_dir: str | Path) -> Path | None:
    """For an export, the corpus of the run it was exported from (to score it on that run's
    splits), if that run and its corpus are still where they were; None for a run, which has
    its own, and for an export whose source is gone (then --data says which corpus)."""
    record = RunDir(run_dir).export_record
    if not record.is_file():
        return None
    try:
        return run_corpus(json.loads(record.read_text())["source"])
    except PeerseqError:
        return None


def check_tokenizers(own: Path, other: Path, names: set[str]) -> None:
    """Refuse a corpus whose tokenizers differ from the run's: its token ids would name other
    pieces, and every score would be wrong without any error."""
    if not (other / "corpus.json").is_file():
        raise PeerseqError(f"--data {other}: not a prepared corpus (no corpus.json)")
    for name in sorted(names):
        mine = sorted((own / "tokenizers").glob(f"{name}.*"))
        theirs = sorted((other / "tokenizers").glob(f"{name}.*"))
        if not theirs:
            raise PeerseqError(f"--data {other}: no tokenizer '{name}', which the run uses")
        if [p.read_bytes() for p in mine] != [p.read_bytes() for p in theirs]:
            raise PeerseqError(
                f"--data {other}: tokenizer '{name}' is not the one the run was trained with "
                f"({own / 'tokenizers'}): prepare the corpus with that tokenizer, or evaluate on "
                "a corpus prepared alike"
            )


def load_run(
    run_dir: str | Path, which: str = "best", device: str = "auto", data: str | Path | None = None
) -> Run:
    """A run's peers with the chosen weights, on its own corpus or on `data` (another prepared
    corpus, whose tokenizers must be the run's)."""
    run_dir = Path(run_dir)
    layout = RunDir(run_dir)
    if not layout.is_run():
        raise PeerseqError(f"{run_dir}: not a run directory (no {layout.config.name})")
    exp = load_config(Experiment, layout.config, [])
    for peer_cfg in exp.peers.values():  # the run's own weights replace any initialisation
        peer_cfg.model.init_from = peer_cfg.model.init_encoder_from = (
            peer_cfg.model.init_decoder_from
        ) = None
    own = corpus_of(run_dir, exp.data.corpus)
    if data is not None:
        check_tokenizers(own, Path(data).resolve(), {f.tokenizer for f in exp.data.fields.values()})
        own = Path(data).resolve()
    exp.data.corpus = str(own)
    data = Data(exp.data, exp.train.seed, speech=reads_speech(exp))
    peers = build_peers(exp, data)
    folder = weights_folder(run_dir, which)
    dev = pick_device(device)
    for name, peer in peers.items():
        path = weights_file(folder, name)
        if not path.is_file():
            raise PeerseqError(f"{folder}: no weights for peer '{name}' ({path.name})")
        peer.model.load_state_dict(load_weights(path))
        peer.model.to(dev).eval()
    return Run(run_dir, exp, data, peers, dev, which)


def _peer(run: Run, name: str) -> Peer:
    if name not in run.peers:
        raise PeerseqError(f"{run.dir}: no peer '{name}' (peers: {', '.join(run.peers)})")
    return run.peers[name]


def decode_split(run: Run, peer: str, split: str, beam: int | None = None) -> Decoded:
    p, cfg = _peer(run, peer), run.exp.peers[peer].decode
    if p.upstream:
        raise PeerseqError(f"peer '{peer}' reads '{p.reads}' (teacher mode): decode '{p.upstream}'")
    if beam is not None:
        cfg = dataclasses.replace(cfg, beam=beam)
    column = run.exp.data.fields[p.predicts].column
    batches = run.data.batches(split)
    return decode_peer(p, batches, run.data.tokenizers[p.predicts], column, cfg, run.device)


def evaluate_run(run: Run, split: str) -> dict[str, dict]:
    """{peer: {"metric", "score", "signature", "n"}} for every peer that decodes; also
    written to RUN/eval/{split}.json with the hypotheses beside it."""
    out = {}
    layout = RunDir(run.dir)
    layout.eval.mkdir(exist_ok=True)
    for name, peer in run.peers.items():
        metric = run.exp.peers[name].decode.metric
        if metric == "none" or peer.upstream:
            continue
        decoded = decode_split(run, name, split)
        value, signature = score(decoded.refs, decoded.hyps, metric)
        out[name] = {
            "metric": metric,
            "score": value,
            "signature": signature,
            "n": len(decoded.ids),
            "weights": run.weights,
            "corpus": run.exp.data.corpus,
        }
        write_outputs(decoded, layout.hypotheses(name, split))
    layout.scores(split).write_text(json.dumps(out, indent=2) + "\n")
    return out


def cascade_split(
    asr: Run, asr_peer: str, mt: Run, mt_peer: str, split: str, beam: int | None = None
) -> Decoded:
    """Cascade ST (paper 000, 4.1): `asr_peer` of run `asr` transcribes the split's speech
    (1-best, its own decode settings), `mt_peer` of run `mt` translates the transcripts (beam
    search with its decode settings). References: the MT peer's target column."""
    a, m = _peer(asr, asr_peer), _peer(mt, mt_peer)
    if a.reads != "speech" or m.reads == "speech":
        raise PeerseqError(
            f"cascade: '{asr_peer}' must read speech (reads {a.reads}) and '{mt_peer}' text "
            f"(reads {m.reads})"
        )
    a_cfg, m_cfg = asr.exp.peers[asr_peer].decode, mt.exp.peers[mt_peer].decode
    m_cfg = dataclasses.replace(m_cfg, beam=beam) if beam is not None else m_cfg
    asr_tok, src_tok = asr.data.tokenizers[a.predicts], mt.data.tokenizers[m.reads]
    column = mt.exp.data.fields[m.predicts].column
    tgt_tok = mt.data.tokenizers[m.predicts]
    asr_model, mt_model = (r.peers[p].model for r, p in ((asr, asr_peer), (mt, mt_peer)))
    out = Decoded([], [], [])
    with torch.inference_mode():
        for batch in asr.data.batches(split):
            batch = batch.to(asr.device)
            res = cascade(
                asr_model,
                mt_model,
                batch.speech,
                batch.speech_lengths,
                asr_tok.decode,
                src_tok.encode,  # the MT source field has no EOS (FieldConfig.eos: false)
                beam=m_cfg.beam,
                asr_beam=a_cfg.beam,
                asr_max_len_a=max_len_a(a, a_cfg),
                asr_max_len_b=a_cfg.max_len_b,
                asr_len_penalty=a_cfg.len_penalty,
                max_len_a=max_len_a(m, m_cfg),
                max_len_b=m_cfg.max_len_b,
                len_penalty=m_cfg.len_penalty,
            )
            out.ids += batch.ids
            out.hyps += [tgt_tok.decode(h[0].tokens) if h else "" for h in res.translations]
            out.refs += batch.texts[column]
    return out
