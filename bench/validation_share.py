"""The share of a recipe's wall time spent validating, at its `small` settings.

    python bench/validation_share.py [--recipes em_asr,em_mt,mlkd,st_e2e,st_ml]

Each recipe's main config is trained for one epoch by `peerseq.train.train` (the real loop,
torch on 2 threads) on the small copy of its corpus that the other benches use (prepared once
under exp/data), validating on that copy's whole dev split (for fsdd-connected a copy with
200 dev utterances, the recipes' limit_dev: a dev split of 20 comes in batches of two or three,
slower per utterance). The run's metrics.jsonl gives the
seconds of the validations (`valid_seconds`) and of the run (`valid_share`); both are per
utterance, so they scale to the recipe's own sizes: an epoch of `limit_train` utterances and,
per validation, `limit_dev` dev utterances (one validation an epoch, or one every
`valid_every` updates and one at the epoch's end).

Prints one JSON line: per recipe the projected share at `small`, the measured seconds per
training and per dev utterance, and the sizes used. The copy's models have had one short epoch:
beam search on dev runs longer on an untrained model than on a trained one, so a recipe that
beam-searches is, if anything, overstated.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peerseq.config import load_config  # noqa: E402
from peerseq.data.pipeline import Data  # noqa: E402
from peerseq.data.prepare import prepare_corpus  # noqa: E402
from peerseq.experiment import Experiment  # noqa: E402
from peerseq.rundir.log import read_metrics  # noqa: E402
from peerseq.train import train  # noqa: E402

# dev as large as the recipes' limit_dev: a tiny dev split makes tiny batches, slower per utterance
FSDD = (
    "fsdd-connected-300-200",
    "{name: fsdd-connected, sizes: {train: 300, dev: 200, test: 20}}",
)
M30K = ("multi30k-text-1000", "{name: multi30k, limit: 1000, vocab_size: 4000}")
M30KS = ("multi30k-speech-300", "{name: multi30k-speech, limit: 300, vocab_size: 1000}")
# name -> (config, small copy of its corpus, how to prepare the copy)
RECIPES = {
    "em_asr": ("recipes/em_network/ctc.yaml", *FSDD),
    "em_mt": ("recipes/em_network/mt.yaml", *M30K),
    "mlkd": ("recipes/mlkd/students.yaml", *FSDD),
    "st_e2e": ("recipes/st_mutual/e2e.yaml", *M30KS),
    "st_ml": ("recipes/st_mutual/ml.yaml", *M30KS),  # ST and MT peers, both beam-searched
}


def measure(name: str, out: Path) -> dict:
    config, corpus, prep = RECIPES[name]
    small = load_config(Experiment, ROOT / config, [])
    overrides = [
        f"data.corpus={ROOT / 'exp' / 'data' / corpus}",
        f"data.prepare={prep}",
        "data.limit_train=null",
        "data.limit_dev=null",
        "train.max_epochs=1",
        "train.valid_every=null",
        "train.keep_last=1",
        f"out_dir={out / name}",
    ]
    exp = load_config(Experiment, ROOT / config, overrides)
    for p in exp.peers.values():  # st_e2e starts from an ASR run: not here (same cost)
        p.model.init_from = p.model.init_encoder_from = p.model.init_decoder_from = None
    prepare_corpus(exp.data)
    data = Data(exp.data, seed=1)
    n_train = sum(len(c) for c in data.sampler(exp.data.train_split, True))
    n_dev = sum(len(c) for c in data.sampler(exp.data.dev_split, False))
    updates = len(list(data.sampler(exp.data.train_split, True)))
    train(exp)
    dev = [r for r in read_metrics(out / name / "metrics.jsonl") if r["split"] == "dev"]
    valid = dev[-1]["valid_seconds"]
    run = valid / dev[-1]["valid_share"]
    per_train, per_dev = (run - valid) / n_train, valid / n_dev
    # the recipe at small: its limits, and its validations per epoch
    limit_train = small.data.limit_train or n_train
    limit_dev = small.data.limit_dev or n_dev
    updates_small = updates * limit_train / n_train
    every = small.train.valid_every
    validations = (math.floor(updates_small / every) if every else 0) + 1
    epoch = per_train * limit_train
    validating = validations * per_dev * limit_dev
    return {
        "share": round(validating / (epoch + validating), 3),
        "seconds_per_train_utterance": round(per_train, 4),
        "seconds_per_dev_utterance": round(per_dev, 4),
        "limit_train": limit_train,
        "limit_dev": limit_dev,
        "validations_per_epoch": validations,
        "measured_on": {"corpus": corpus, "train": n_train, "dev": n_dev},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=",".join(RECIPES))
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        out = {name: measure(name, Path(tmp)) for name in args.recipes.split(",")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
