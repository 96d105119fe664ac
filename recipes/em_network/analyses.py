"""Paper 002 analyses that run the trained models (report.py builds the page from them):
teacher-forced argmax outputs (Table 3), posteriorgrams (Figure 3/5), the EM-Network's training
losses (Figure 4) and the alpha/lambda sweep (Figure 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from peerseq.decoding.outputs import read_outputs
from peerseq.report import figures
from peerseq.rundir.log import read_metrics
from peerseq.runs import load_run
from peerseq.search.ctc import ctc_greedy


@torch.no_grad()
def teacher_forced_argmax(run_dir: Path) -> list[list[int]]:
    """The exported model's argmax at every target position of the test set under teacher
    forcing (the paper's Table 3 protocol: teacher forcing and greedy choice)."""
    run = load_run(run_dir, device="cpu")
    peer = run.peers["seq"]
    seqs = []
    for batch in run.data.batches(run.exp.data.test_split, run.exp.data.limit_test):
        out = peer.forward(batch)
        best = out.log_probs.argmax(-1)
        seqs += [best[i, : int(n) - 1].tolist() for i, n in enumerate(out.lengths)]  # no EOS
    return seqs


@torch.no_grad()
def posteriorgram_figure(seed_dir: Path, out: Path) -> dict | None:
    """Fig. 3/5: plain CTC, EM-Network's theta and the EM-Network in teacher mode on the first
    test utterance (by id) that the plain model gets wrong (else the first one)."""
    if not all((seed_dir / m / "config.yaml").is_file() for m in ("ctc", "em")):
        return None
    plain = read_outputs(seed_dir / "ctc" / "export" / "eval" / "seq.test.jsonl")
    wrong = sorted(i for i, (h, r) in plain.items() if h != r)
    uid = wrong[0] if wrong else sorted(plain)[0]
    ctc_run, em_run = (
        load_run(seed_dir / "ctc", device="cpu"),
        load_run(seed_dir / "em", device="cpu"),
    )
    batch = next(
        b
        for b in em_run.data.batches(em_run.exp.data.test_split, em_run.exp.data.limit_test)
        if uid in b.ids
    )
    i = batch.ids.index(uid)
    outs = {"seq": em_run.peers["seq"].forward(batch)}
    outs["em"] = em_run.peers["em"].forward(batch, outs)
    panels_src = [
        ("plain Conformer-CTC", ctc_run.peers["seq"].forward(batch)),
        ("EM-Network's sequence model theta (student mode)", outs["seq"]),
        ("EM-Network phi (teacher mode: reads the target)", outs["em"]),
    ]
    tok = em_run.data.tokenizers["transcript"]
    labels = ["<b>"] + [("␣" if c == " " else c) for c in tok.alphabet]
    panels = []
    for name, o in panels_src:
        n = int(o.lengths[i])
        text = tok.decode(ctc_greedy(o.log_probs[i : i + 1, :n], o.lengths[i : i + 1])[0])
        panels.append((f'{name}: "{text}"', o.log_probs[i, :n].exp().numpy()))
    ref = plain[uid][1]
    figures.posteriorgrams(panels, labels, out, title=f'{uid}; reference "{ref}"')
    return {"utterance": uid, "reference": ref, "figure": out.name}


def loss_curves(seed_dir: Path, task: str, out: Path) -> str | None:
    """Fig. 4: L_org (the sequence model's loss) and L_em (the EM-Network's) while training."""
    path = seed_dir / "em" / "metrics.jsonl"
    if not path.is_file():
        return None
    loss = "ctc" if task == "asr" else "nll"
    rows = read_metrics(path)
    train = [r for r in rows if r["split"] == "train" and f"seq/{loss}" in r]
    series = {
        f"L_org (seq/{loss})": ([r["step"] for r in train], [r[f"seq/{loss}"] for r in train]),
        f"L_em (em/{loss})": ([r["step"] for r in train], [r[f"em/{loss}"] for r in train]),
    }
    figures.curves(
        series,
        out,
        ylabel=f"training {loss.upper()} loss (log scale)",
        logy=True,
        title=f"EM-Network ({task.upper()}) training losses, {seed_dir.parent.name}",
    )
    return out.name


def sweep_figure(seeds: dict[int, Path], out: Path) -> dict | None:
    """Fig. 6: test BLEU against alpha (lambda 0.5) and against lambda (alpha 2)."""

    def bleu_of(run: str) -> float | None:
        vals = [
            json.loads(f.read_text())["seq"]["score"]
            for d in seeds.values()
            if (f := d / run / "export" / "eval" / "test.json").is_file()
        ]
        return float(np.mean(vals)) if vals else None

    points = {"alpha": {2.0: bleu_of("em")}, "lambda": {0.5: bleu_of("em")}}
    for d in seeds.values():
        for p in d.glob("em_*"):
            m = re.fullmatch(r"em_(alpha|lambda)([\d.]+)", p.name)
            if m:
                points[m.group(1)][float(m.group(2))] = bleu_of(p.name)
    points = {k: {x: y for x, y in v.items() if y is not None} for k, v in points.items()}
    if sum(len(v) for v in points.values()) <= 2:
        return None
    refs = {
        label: v
        for label, run in (("Transformer", "mt"), ("R-Drop", "rdrop"))
        if (v := bleu_of(run)) is not None
    }
    panels = [
        (name, sorted(v), [v[x] for x in sorted(v)], refs)
        for name, v in (
            ("alpha (lambda = 0.5)", points["alpha"]),
            ("lambda (alpha = 2)", points["lambda"]),
        )
    ]
    figures.sweep(panels, out)
    return {k: {str(x): round(y, 2) for x, y in sorted(v.items())} for k, v in points.items()}
