"""Inference cost of an exported EM-Network sequence model against a plain model of the same
architecture: nothing of the auxiliary network may be left (goal 1.00 +- 0.03).

    python bench/export_inference.py [--rounds 9] [--budget 120] [--threads 2]

Trains recipes/em_network's EM-Network configs (small sizes) for one update on small copies of
their corpora (fsdd-connected 300, Multi30k 1,000), exports the sequence model with
`peerseq export` (peerseq.export.export_peer), and times, on the same test batches:
    CTC  forward + greedy decoding (Conformer-CTC d 144): exported vs the plain ctc.yaml model
    AED  the teacher-forced forward over the references (Transformer d 128): exported vs plain
(beam search would time the hypotheses' lengths, which depend on the weights, not the
architecture). Interleaved rounds, torch.set_num_threads(--threads), one process (1 beside
other jobs: two threads against a busy core wait on each other, and passes then vary tenfold);
each ratio is the median of the per-round ratios (a round times both models back to back, so a
machine whose speed drifts, or that other jobs share, moves both alike).

Prints ONE JSON object: exported_over_plain (CTC), exported_over_plain_aed, parameters of
each model, and the raw medians (ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peerseq.config import load_config  # noqa: E402
from peerseq.experiment import Experiment  # noqa: E402
from peerseq.export import export_peer  # noqa: E402
from peerseq.metrics.cost import count_parameters  # noqa: E402
from peerseq.runs import load_run, source_corpus  # noqa: E402
from peerseq.search.ctc import ctc_greedy  # noqa: E402
from peerseq.train import Trainer  # noqa: E402

RECIPE = ROOT / "recipes" / "em_network"
DATA = {
    "ctc": (
        ROOT / "exp" / "data" / "fsdd-connected-300",
        "{name: fsdd-connected, sizes: {train: 300, dev: 20, test: 20}}",
    ),
    "aed": (
        ROOT / "exp" / "data" / "multi30k-text-1000",
        "{name: multi30k, limit: 1000, vocab_size: 4000}",
    ),
}


def train_one_step(config: str, kind: str, out: Path) -> Path:
    corpus, prep = DATA[kind]
    exp = load_config(
        Experiment,
        RECIPE / config,
        [
            f"out_dir={out}",
            f"data.corpus={corpus}",
            f"data.prepare={prep}",
            "data.limit_train=null",
            "data.limit_dev=4",
            "train.max_steps=1",
            "train.early_stop_peer=null",
            "train.patience=null",
        ],
    )
    Trainer(exp).fit()
    return out


@torch.no_grad()
def one_pass(run, kind: str, batches) -> None:
    model = run.peers["seq"].model
    for batch in batches:
        if kind == "ctc":
            out = model(batch.speech, batch.speech_lengths)
            ctc_greedy(out.log_probs, out.lengths)
        else:
            run.peers["seq"].forward(batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds: stop adding rounds")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {"ms": {}, "parameters": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {}
        for kind, em_cfg, plain_cfg in (("ctc", "em_ctc.yaml", "ctc.yaml"),
                                        ("aed", "em_aed.yaml", "mt.yaml")):  # fmt: skip
            em = train_one_step(em_cfg, kind, tmp / f"em_{kind}")
            export_peer(em, "seq", tmp / f"em_{kind}_export")
            plain = train_one_step(plain_cfg, kind, tmp / f"plain_{kind}")
            runs[f"exported_{kind}"] = load_run(
                tmp / f"em_{kind}_export",
                device="cpu",
                data=source_corpus(tmp / f"em_{kind}_export"),
            )
            runs[f"plain_{kind}"] = load_run(plain, device="cpu")
        batches = {
            kind: list(runs[f"plain_{kind}"].data.batches("test")) for kind in ("ctc", "aed")
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        start = time.perf_counter()
        for r in range(args.rounds + 1):
            if r > 2 and time.perf_counter() - start > args.budget:
                break
            for name, run in runs.items():
                kind = name.rsplit("_", 1)[1]
                t0 = time.perf_counter()
                one_pass(run, kind, batches[kind])
                if r > 0:  # round 0 warms up
                    times[name].append(time.perf_counter() - t0)
        ms = {n: round(1000 * statistics.median(v), 2) for n, v in times.items()}
        for kind, key in (("ctc", "exported_over_plain"), ("aed", "exported_over_plain_aed")):
            pairs = zip(times[f"exported_{kind}"], times[f"plain_{kind}"], strict=True)
            result[key] = round(statistics.median(e / p for e, p in pairs), 3)
        result["ms"] = ms
        result["parameters"] = {n: count_parameters(r.peers["seq"].model) for n, r in runs.items()}
        result["rounds"] = len(times["plain_ctc"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
