"""Teacher k-best decoding speed (paper 003's pseudo-labels): the batched decoder against one
utterance at a time.

    python bench/pseudo_labels.py [--utterances 1000] [--k 4] [--beam 8] [--size small]

recipes/mlkd's Teacher A (DeepSpeech2, `--size` of the deepspeech2_ctc preset, random
weights: decoding cost does not depend on what the weights learnt, only on shapes and the beam)
decodes the first N training utterances of fsdd-connected with recipes/mlkd's features (201-dim
log spectrogram; the corpus is prepared once under exp/data). Both ways run the same code as
`peerseq.decoding.teacher_labels.teacher_labels`: the model's forward, then
`ctc_prefix_beam_search(beam, k)`; "batched" feeds the recipe's length-bucketed batches, "one by
one" feeds each utterance alone. torch.set_num_threads(2), one process; wall clock.

Prints ONE JSON object:
    utterances_per_s   batched decoding, utterances per second
    speedup            batched / one by one (same utterances, same k-best: checked equal)
    one_by_one_utterances_per_s, seconds, audio_seconds, k, beam, utterances
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peerseq.build import reads_speech  # noqa: E402
from peerseq.config import load_config  # noqa: E402
from peerseq.data.pipeline import Data  # noqa: E402
from peerseq.data.prepare import prepare_corpus  # noqa: E402
from peerseq.experiment import Experiment  # noqa: E402
from peerseq.models.presets import build  # noqa: E402
from peerseq.search.ctc import ctc_prefix_beam_search  # noqa: E402

CORPUS = "{name: fsdd-connected, sizes: {train: 1000, dev: 20, test: 20}}"


@torch.no_grad()
def decode(model, batches, beam: int, k: int) -> dict[str, list[list[int]]]:
    out = {}
    for b in batches:
        o = model(b.speech, b.speech_lengths)
        hyps = ctc_prefix_beam_search(o.log_probs, o.lengths, beam=beam, k=k)
        out.update(zip(b.ids, [[t for t, _ in hs] for hs in hyps], strict=True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=1000)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--beam", type=int, default=8)
    ap.add_argument("--size", default="small", choices=["tiny", "small", "paper"])
    args = ap.parse_args()
    torch.set_num_threads(2)
    exp = load_config(
        Experiment,
        ROOT / "recipes" / "mlkd" / "teacher_a.yaml",
        [
            f"data.corpus={ROOT / 'exp' / 'data' / 'fsdd-connected-1000'}",
            f"data.prepare={CORPUS}",
            f"data.limit_train={args.utterances}",
            "data.min_seconds=null",  # every utterance the corpus has, short ones too
        ],
    )
    prepare_corpus(exp.data)
    data = Data(exp.data, seed=1, speech=reads_speech(exp))
    batches = list(data.batches("train"))
    singles = [
        type(b)([b.ids[i]], b.speech[i : i + 1, : int(n)], b.speech_lengths[i : i + 1])
        for b in batches
        for i, n in enumerate(b.speech_lengths)
    ]
    torch.manual_seed(1)
    model = build("deepspeech2_ctc", args.size, src_feats=data.feature_dim(), vocab=29).eval()
    decode(model, batches[:1], args.beam, args.k)  # warm-up
    t0 = time.perf_counter()
    batched = decode(model, batches, args.beam, args.k)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = decode(model, singles, args.beam, args.k)
    t_alone = time.perf_counter() - t0
    if batched != alone:  # the same k-best either way (padding never enters the model)
        differ = sum(batched[i] != alone[i] for i in batched)
        print(f"warning: {differ} of {len(batched)} k-best lists differ", file=sys.stderr)
    n = len(batched)
    frames = sum(int(b.speech_lengths.sum()) for b in batches)
    print(
        json.dumps(
            {
                "utterances_per_s": round(n / t_batched, 1),
                "speedup": round(t_alone / t_batched, 2),
                "one_by_one_utterances_per_s": round(n / t_alone, 1),
                "seconds": {"batched": round(t_batched, 1), "one_by_one": round(t_alone, 1)},
                "audio_seconds": round(frames / 100, 1),
                "k": args.k,
                "beam": args.beam,
                "utterances": n,
                "size": args.size,
            }
        )
    )


if __name__ == "__main__":
    main()
