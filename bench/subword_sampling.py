"""Subword sampling (Kudo's l-best, nbest 64) per sentence: the n-best search and scoring done
for every draw, against the tokenizer's kept n-best lists (the second epoch onwards).

    python bench/subword_sampling.py [--sentences 3000] [--corpus exp/data/multi30k-text]

On the first N German sentences of Multi30k's training text, with the corpus's spm_de (prepared
by `peerseq prepare multi30k` when missing). Both draw from generators of the same seed and must
give the same segmentations (checked). Prints one JSON line: microseconds a sentence for the
plain sampler, the tokenizer's first pass (filling its lists) and its second, and the ratio
plain / second.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from peerseq.data.manifest import load_text_split
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.tokenizers import kudo_sample, load_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=3000)
    ap.add_argument("--corpus", default="exp/data/multi30k-text")
    args = ap.parse_args()
    if not (Path(args.corpus) / "corpus.json").is_file():
        prepare(PrepareArgs("multi30k", Path(args.corpus), vocab_size=4000))
    tok = load_tokenizer(args.corpus, "spm_de")
    lines = [r["de"] for r in load_text_split(args.corpus, "train")[: args.sentences]]
    out, drawn = {}, {}
    for name in ("plain", "first_pass", "second_pass"):
        rng = random.Random(1)
        t0 = time.perf_counter()
        if name == "plain":
            drawn[name] = [kudo_sample(tok, s, rng) for s in lines]
        else:
            drawn[name] = [tok.encode(s, sample=True, rng=rng) for s in lines]
        out[f"{name}_us"] = round(1e6 * (time.perf_counter() - t0) / len(lines), 1)
    assert drawn["plain"] == drawn["first_pass"] == drawn["second_pass"], "different draws"
    out["plain_over_kept"] = round(out["plain_us"] / out["second_pass_us"], 1)
    print(json.dumps(out | {"sentences": len(lines)}))


if __name__ == "__main__":
    main()
