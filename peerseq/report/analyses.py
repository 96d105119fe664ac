"""Analyses that run trained models for a results page (paper 002's Table 3, Table 4 and
Figure 3/5), each kept in the run as RUN/analyses/NAME.json: recomputed when the run's weights
are newer, read back when the weights are gone (a report made again from copied logs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from peerseq.decoding.outputs import read_outputs
from peerseq.files import atomic_write_text
from peerseq.metrics.cost import count_parameters
from peerseq.metrics.repetition import token_repetition_ratio
from peerseq.rundir.layout import RunDir
from peerseq.runs import load_run, source_corpus
from peerseq.search.ctc import ctc_greedy


def cached(run_dir: Path, name: str, compute: Callable[[], object]) -> object | None:
    """compute()'s result, kept in RUN/analyses/NAME.json; None when it was never computed and
    the run's weights are not here to compute it."""
    layout = RunDir(run_dir)
    cache, weights = layout.analyses / f"{name}.json", layout.last_weights_written()
    if cache.is_file() and (weights is None or cache.stat().st_mtime >= weights.stat().st_mtime):
        return json.loads(cache.read_text())
    if weights is None:
        return None
    value = compute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps(value) + "\n")
    return value


@torch.no_grad()
def teacher_forced_argmax(run_dir: Path, peer: str = "seq") -> list[list[int]]:
    """The model's argmax at every target position of the test set under teacher forcing (paper
    002's Table 3 protocol: teacher forcing and greedy choice), end of sentence left out."""
    run = load_run(run_dir, device="cpu", data=source_corpus(run_dir))
    seqs = []
    for batch in run.data.batches(run.exp.data.test_split):
        out = run.peers[peer].forward(batch)
        best = out.log_probs.argmax(-1)
        seqs += [best[i, : int(n) - 1].tolist() for i, n in enumerate(out.lengths)]
    return seqs


def teacher_forced_repetition(export_dir: Path) -> float | None:
    """Token repetition ratio (%) of an export's teacher-forced argmax on the test set."""
    return cached(
        export_dir,
        "teacher_forced_repetition",
        lambda: token_repetition_ratio(teacher_forced_argmax(export_dir)),
    )


def em_parameters(run_dir: Path) -> dict | None:
    """{"theta", "rho"}: the sequence model's parameters and the EM-Network's auxiliary ones."""

    def count() -> dict:
        run = load_run(run_dir, device="cpu")
        return {
            "theta": count_parameters(run.peers["seq"].model),
            "rho": count_parameters(run.peers["em"].model.aux),
        }

    return cached(run_dir, "parameters", count)


@torch.no_grad()
def posteriorgram_panels(seed_dir: Path, plain: str, em: str) -> dict | None:
    """Frame posteriors of the plain CTC model, the EM-Network's theta and the EM-Network in
    teacher mode on the first test utterance (by id) the plain model gets wrong (else the first);
    kept in the EM-Network's run (rounded to 4 decimals)."""
    if not all(RunDir(seed_dir / m).is_run() for m in (plain, em)):
        return None

    def compute() -> dict:
        decoded = read_outputs(RunDir(RunDir(seed_dir / plain).export).outputs("seq", "test"))
        wrong = sorted(i for i, (h, r) in decoded.items() if h != r)
        uid = wrong[0] if wrong else sorted(decoded)[0]
        plain_run = load_run(seed_dir / plain, device="cpu")
        em_run = load_run(seed_dir / em, device="cpu")
        batch = next(b for b in em_run.data.batches(em_run.exp.data.test_split) if uid in b.ids)
        i = batch.ids.index(uid)
        outs = {"seq": em_run.peers["seq"].forward(batch)}
        outs["em"] = em_run.peers["em"].forward(batch, outs)
        sources = [
            ("plain Conformer-CTC", plain_run.peers["seq"].forward(batch)),
            ("EM-Network's sequence model theta (student mode)", outs["seq"]),
            ("EM-Network phi (teacher mode: reads the target)", outs["em"]),
        ]
        tok = em_run.data.tokenizers["transcript"]
        posts, texts = [], []
        for _, o in sources:
            n = int(o.lengths[i])
            best = ctc_greedy(o.log_probs[i : i + 1, :n], o.lengths[i : i + 1])[0]
            texts.append(tok.decode(best))
            posts.append(o.log_probs[i, :n].exp())
        rows, labels = posteriorgram_rows(tok, decoded[uid][1], posts)
        panels = [
            [f'{name}: "{text}"', post[:, rows].numpy().round(4).tolist()]
            for (name, _), text, post in zip(sources, texts, posts, strict=True)
        ]
        return {"utterance": uid, "reference": decoded[uid][1], "labels": labels, "panels": panels}

    return cached(seed_dir / em, "posteriorgram", compute)


def posteriorgram_rows(tok, reference: str, posts: list) -> tuple[list[int], list[str]]:
    """Which labels a posteriorgram draws, and their names: every character for the character
    tokenizer; for subword pieces (hundreds) the blank, the reference's pieces and any piece
    that is some frame's best in some panel (posts: [T, V] tensors)."""
    if hasattr(tok, "alphabet"):
        chars = [("␣" if c == " " else c) for c in tok.alphabet]
        return list(range(tok.vocab_size)), ["<b>", *chars]
    picked = set(tok.encode(reference)) | {int(k) for p in posts for k in p.argmax(1)}
    rows = [0, *sorted(picked - {0})]
    return rows, ["<b>"] + [tok.sp.id_to_piece(k).replace("\u2581", "␣") for k in rows[1:]]
