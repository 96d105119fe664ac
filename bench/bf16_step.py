"""bf16 autocast against fp32: milliseconds per training step of every recipe model at `small`.

    python bench/bf16_step.py [--rounds 5] [--threads 1]

`train.bf16: true` runs forward passes under torch.autocast(bfloat16); on a CPU that is only
worth it where oneDNN runs bf16 natively (AVX-512 BF16 or AMX: peerseq.distributed's check). The
models and batches are bench/recipe_steps.py's (the engine's own update: forward, loss,
backward, AdamW, on the recipe's config and batch shapes). Each model is built twice from the
same seed, one stepped in fp32 and one under autocast; the rounds alternate them in one process
so a shared machine's load spreads evenly, and a time is the median of its rounds after one
warm-up round. One thread by default: the recipes' runs go two single-thread processes side by
side. Prints one JSON line: per model fp32_ms, bf16_ms and speedup (fp32 / bf16). On a CPU
without native bf16 nothing is timed (a bf16 product there is hundreds of times slower) and the
line says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from recipe_steps import LABELS, tasks

from peerseq.distributed import autocast_factory, cpu_bf16_supported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not cpu_bf16_supported():
        print(json.dumps({"bf16_supported": False, "note": "no native bf16: not timed"}))
        return
    fp32, bf16 = tasks(1), tasks(1)  # tasks() seeds every build: the same weights and batches
    for _, _, _, opt, _ in bf16.values():
        opt.autocast = autocast_factory(torch.device("cpu"), True)
    times = {(n, kind): [] for n in fp32 for kind in ("fp32", "bf16")}
    step = 0
    for r in range(args.rounds + 1):
        for name in fp32:
            for kind, built in (("fp32", fp32), ("bf16", bf16)):
                rule, peers, links, opt, batches = built[name]
                t0 = time.perf_counter()
                for b in batches:
                    step += 1
                    rule(peers, links, b, step, opt, True)
                if r:  # round 0 warms up
                    times[name, kind].append((time.perf_counter() - t0) / len(batches))
    out = {}
    for name, (_, _, _, _, batches) in fp32.items():
        f = 1000 * statistics.median(times[name, "fp32"])
        h = 1000 * statistics.median(times[name, "bf16"])
        b = batches[0]
        shape = b.speech.shape if b.speech is not None else b.tokens["target"].shape
        out[name] = {
            "model": LABELS[name],
            "fp32_ms": round(f, 1),
            "bf16_ms": round(h, 1),
            "speedup": round(f / h, 2),
            "batch": list(shape),
        }
    print(json.dumps({"bf16_supported": True, "threads": args.threads, "models": out}))


if __name__ == "__main__":
    main()
