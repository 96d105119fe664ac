"""What the input pipeline adds to an epoch of training: real loading against batches in memory.

    python bench/input_pipeline.py [--rounds 3] [--config recipes/em_network/ctc.yaml]

One epoch of a recipe's training (default: paper 002's Conformer-CTC at `small`, on a 300-
utterance copy of its corpus fsdd-connected, prepared once under exp/data): lhotse manifests,
precomputed lilcom features, CMVN, bucketing, padding and tokenizing, then the engine's own
update (forward, backward, AdamW), torch on 2 threads. Timed three ways, interleaved round after
round so that other load spreads evenly (a way's time is its median over rounds):

    memory      the same batches collated beforehand and held in memory: no loading at all
    in_process  peerseq's training input on a CPU (peerseq.data.loader.epoch_batches with
                data.workers = 0, the default there): each batch collated between two steps
    worker      the same with data.workers = 1 (the default beside a GPU): batches collated
                ahead in a worker process while the step runs
    augmented   in_process with data.augment: speed 0.9/1.0/1.1, volume 0.5-2x for half the
                utterances and SpecAugment (recipes/fsdd_speakers/ctc_augmented.yaml's), so the
                features are computed from the perturbed audio rather than read, and the sped-up
                utterances are longer (their steps too)

Prints one JSON line: loader_over_memory (the default CPU input: in_process over memory),
worker_over_memory, augmented_over_loader (augmented over in_process: what augmentation adds;
each the median over rounds of that round's ratio), the three epoch times
in seconds (medians), the number of batches and frames a batch.
On a 2-core CPU the worker competes with the step's two threads and costs more than it hides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from step_overhead import build_method  # noqa: E402

from peerseq.build import reads_speech  # noqa: E402
from peerseq.config import load_config  # noqa: E402
from peerseq.data.config import AugmentConfig  # noqa: E402
from peerseq.data.loader import epoch_batches  # noqa: E402
from peerseq.data.pipeline import Data  # noqa: E402
from peerseq.data.prepare import prepare_corpus  # noqa: E402
from peerseq.experiment import Experiment  # noqa: E402
from peerseq.typed import from_dict  # noqa: E402

CORPUS = ROOT / "exp" / "data" / "fsdd-connected-300"
PREPARE = "{name: fsdd-connected, sizes: {train: 300, dev: 20, test: 20}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--config", default=str(ROOT / "recipes" / "em_network" / "ctc.yaml"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    exp = load_config(
        Experiment,
        args.config,
        [f"data.corpus={CORPUS}", f"data.prepare={PREPARE}", "data.limit_train=null"],
    )
    prepare_corpus(exp.data)
    data = Data(exp.data, seed=1, speech=reads_speech(exp))
    peers, links, rule, opt = build_method("bench", data, exp)
    collate = data.collator(training=True)

    def batches(workers: int | None):
        sampler = data.sampler(exp.data.train_split, True)
        sampler.set_epoch(0)
        return epoch_batches(sampler, collate, 1, 0, workers=workers or 0)

    augment = {"speed": [0.9, 1.0, 1.1], "volume": [0.5, 2.0], "specaugment": {}}
    augmented = Data(
        replace(exp.data, augment=from_dict(AugmentConfig, augment)),
        seed=1,
        speech=reads_speech(exp),
    )

    def augmented_batches():
        sampler = augmented.sampler(exp.data.train_split, True)
        sampler.set_epoch(0)
        return epoch_batches(sampler, augmented.collator(training=True), 1, 0, workers=0)

    in_memory = list(batches(0))
    ways = {
        "memory": lambda: in_memory,
        "in_process": lambda: batches(0),
        "worker": lambda: batches(1),
        "augmented": augmented_batches,
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    step = 0
    for r in range(args.rounds + 1):
        for name, source in ways.items():
            t0 = time.perf_counter()
            for b in source():
                step += 1
                rule(peers, links, b, step, opt, True)
            if r > 0:  # round 0 warms up
                times[name].append(time.perf_counter() - t0)
    s = {k: statistics.median(v) for k, v in times.items()}
    # each round ran the three back to back: the median of per-round ratios is steadier on a
    # shared machine (whose speed drifts within a run) than the ratio of medians

    def over(way: str, base: str = "memory") -> float:
        return statistics.median(w / m for w, m in zip(times[way], times[base], strict=True))

    print(
        json.dumps(
            {
                "loader_over_memory": round(over("in_process"), 3),
                "worker_over_memory": round(over("worker"), 3),
                "augmented_over_loader": round(over("augmented", "in_process"), 3),
                "seconds": {k: round(v, 2) for k, v in s.items()},
                "batches": len(in_memory),
                "frames_per_batch": round(
                    statistics.mean(b.speech.numel() / b.speech.size(-1) for b in in_memory)
                ),
                "config": str(Path(args.config).resolve().relative_to(ROOT)),
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
