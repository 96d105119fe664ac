"""Cost of coupling peers: one training step of a method vs its peers trained alone.

    python bench/step_overhead.py [--rounds 7] [--batches 1] [--max-frames 2000] [--budget 200]

One process, torch.set_num_threads(2), the same few multi30k-speech batches (speech, source,
target and transcript fields; the corpus is prepared small once) for every method. A step is
forward + backward + optimiser step through the engine's own update rules
(peerseq.engine.update.joint / alternating, engine.optim's Optimisation), so the real code path is
measured. Methods are timed interleaved, round after round (each round: one step per batch), so
that the load of other jobs on a shared machine spreads evenly; a method's time is the median
over rounds after one warm-up round, per step.

Prints ONE JSON object:
    ml_joint_over_sum          ST+MT mutual learning, joint update / (ST alone + MT alone)
    ml_alternating_over_joint  ST+MT, alternating update / joint update
    em_ctc_over_ctc            EM-Network CTC (seq + em, l2 link) / CTC alone, with the
                               configs and batches of recipes/em_network at small scale
                               (Conformer-CTC d 144, fsdd-connected, 12,000 frames a batch)
    em_aed_over_aed            EM-Network encoder-decoder (seq + em reading the masked target,
                               kl link) / the Transformer alone: recipes/em_network MT, small
                               (d 128, Multi30k De->En, 2,500 tokens a batch)
    mlkd_pair_over_sum         recipes/mlkd's MLKD pair (Student A + Student B, seqkd from
                               Teacher A's cached transcripts, kl both ways; mlkd.yaml) /
                               (Student A alone + Student B alone; students.yaml), small sizes,
                               the recipe's batches (201-dim spectrogram, 5,000 frames)
    ms                         the raw medians, milliseconds per step (wall clock)
    cpu_ms                     the same in process CPU time

The seqkd hypotheses are "cached": batch.tokens["hyp:teacher"] holds the transcript as a
stand-in for a teacher's decoded hypotheses, and "teacher" is a frozen peer whose forward costs
nothing (in a real run the hypotheses come from disk and the frozen teacher is not run at all:
peerseq.engine.update skips it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peerseq.build import build_links, build_peers, reads_speech  # noqa: E402
from peerseq.config import load_config  # noqa: E402
from peerseq.data.config import DataConfig, FieldConfig  # noqa: E402
from peerseq.data.pipeline import Data  # noqa: E402
from peerseq.data.prepare import PrepareArgs, prepare, prepare_corpus  # noqa: E402
from peerseq.engine.optim import OptimConfig, build_optimisation  # noqa: E402
from peerseq.engine.peer import Peer  # noqa: E402
from peerseq.engine.update import alternating, forward, joint  # noqa: E402
from peerseq.experiment import (  # noqa: E402
    Experiment,
    LinkConfig,
    ModelConfig,
    PeerConfig,
)
from peerseq.models.output import SeqOutput  # noqa: E402

CORPUS = ROOT / "exp" / "data" / "multi30k-speech-200"
EM_RECIPE = ROOT / "recipes" / "em_network"
# the recipe's configs, on small copies of its corpora (the batches have the recipe's shapes)
EM_TASKS = {
    "ctc": (
        "ctc.yaml",
        "fsdd-connected-300",
        "{name: fsdd-connected, sizes: {train: 300, dev: 20, test: 20}}",
    ),
    "em_ctc": ("em_ctc.yaml", "fsdd-connected-300", None),
    "aed": ("mt.yaml", "multi30k-text-1000", "{name: multi30k, limit: 1000, vocab_size: 4000}"),
    "em_aed": ("em_aed.yaml", "multi30k-text-1000", None),
}


def data_config(max_frames: int) -> DataConfig:
    return DataConfig(
        corpus=str(CORPUS),
        fields={
            "source": FieldConfig("en", "spm_en"),
            "target": FieldConfig("de", "spm_de", eos=True),
            "transcript": FieldConfig("transcript", "spm_en"),
        },
        max_frames=max_frames,
    )


def peer(preset: str, reads: str, predicts: str, loss: str, **kw) -> PeerConfig:
    return PeerConfig(ModelConfig(preset, "small"), reads=reads, predicts=predicts, loss=loss, **kw)


ST = peer("st_transformer", "speech", "target", "nll")
MT = peer("mt_transformer", "source", "target", "nll")

# name -> (peers, links, update rule)
METHODS = {
    "st": ({"st": ST}, [], joint),
    "mt": ({"mt": MT}, [], joint),
    "st_mt_joint": ({"st": ST, "mt": MT}, [LinkConfig("mt", "st", "kl_symmetric")], joint),
    "st_mt_alternating": (
        {"st": ST, "mt": MT},
        [LinkConfig("mt", "st", "kl_symmetric")],
        alternating,
    ),
}


class CachedTeacher(nn.Module):
    """A frozen teacher whose hypotheses are cached in the batch: its output is never read."""

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> SeqOutput:
        b = speech.size(0)
        return SeqOutput(torch.zeros(b, 1, 1), lengths, torch.ones(b, 1, dtype=torch.bool), None)


def recipe_method(name: str, n_batches: int):
    """One of EM_TASKS from its recipe config -> (peers, links, joint, opt, batches)."""
    config, corpus, prep = EM_TASKS[name]
    corpus = ROOT / "exp" / "data" / corpus
    prep = prep or next(p for c, k, p in EM_TASKS.values() if k == corpus.name and p)
    exp = load_config(
        Experiment,
        EM_RECIPE / config,
        [f"data.corpus={corpus}", f"data.prepare={prep}", "data.limit_train=null"],
    )
    prepare_corpus(exp.data)
    data = Data(exp.data, seed=1, speech=reads_speech(exp))
    batches = list(islice(data.batches("train"), n_batches))
    return (*build_method(name, data, exp), batches)


MLKD_RECIPE = ROOT / "recipes" / "mlkd"
# name -> (config, peers kept); the recipe's fsdd-connected copy with its 201-dim features
MLKD_TASKS = {
    "student_a": ("students.yaml", ("a",)),
    "student_b": ("students.yaml", ("b",)),
    "mlkd_pair": ("mlkd.yaml", ("a", "b")),
}


def mlkd_method(name: str, n_batches: int, table: dict | None = None):
    """One of MLKD_TASKS (or of table) -> (peers, links, joint, opt, batches); Teacher A as a
    link's source is replaced by the cached stand-in (its transcripts are the references)."""
    config, keep = (table or MLKD_TASKS)[name]
    exp = load_config(
        Experiment,
        MLKD_RECIPE / config,
        [
            f"data.corpus={ROOT / 'exp' / 'data' / 'fsdd-connected-300'}",
            "data.prepare={name: fsdd-connected, sizes: {train: 300, dev: 20, test: 20}}",
            "data.limit_train=null",
        ],
    )
    exp.peers = {n: p for n, p in exp.peers.items() if n in keep}
    for lc in exp.links:
        lc.a = "teacher" if lc.a == "teacher_a" else lc.a
    prepare_corpus(exp.data)
    data = Data(exp.data, seed=1, speech=reads_speech(exp))
    batches = [with_hyps(b) for b in islice(data.batches("train"), n_batches)]
    return (*build_method(name, data, exp), batches)


def build_method(name: str, data: Data, exp: Experiment | None = None):
    torch.manual_seed(1)
    if exp is None:
        peer_cfgs, link_cfgs, rule = METHODS[name]
        exp = Experiment(out_dir="unused", data=data.cfg, peers=dict(peer_cfgs), links=link_cfgs)
    else:
        link_cfgs, rule = exp.links, joint
    # the seqkd teacher is a frozen peer: built here, not from a preset
    peers = build_peers(exp, data)
    if any(lc.a == "teacher" for lc in link_cfgs):
        peers = {"teacher": Peer("teacher", CachedTeacher(), loss="none", trainable=False)} | peers
        exp.peers["teacher"] = PeerConfig(ModelConfig("none"), trainable=False)
    links = build_links(exp)
    constant = OptimConfig(lr=1e-4, schedule="constant")
    opt = build_optimisation(peers, dict.fromkeys(peers, constant), clip_norm=5.0)
    return peers, links, rule, opt


def with_hyps(batch):
    batch.tokens["hyp:teacher"] = batch.tokens["transcript"]
    batch.lengths["hyp:teacher"] = batch.lengths["transcript"]
    return batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (after one warm-up)")
    ap.add_argument("--budget", type=float, default=150.0, help="seconds: stop adding rounds")
    ap.add_argument("--batches", type=int, default=1, help="batches per round")
    ap.add_argument("--max-frames", type=int, default=2000, help="frames per batch")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if not (CORPUS / "corpus.json").is_file():
        prepare(PrepareArgs(name="multi30k-speech", out=CORPUS, limit=200, vocab_size=1000))
    data = Data(data_config(args.max_frames), seed=1)
    batches = [with_hyps(b) for b in islice(data.batches("train"), args.batches)]
    built = {name: build_method(name, data) for name in METHODS}
    # what alternating adds to joint: mainly a no-grad re-run of the peer that steps first (st)
    st_peers, _, _, st_opt = built["st_mt_alternating"]

    def st_refresh(_peers, _links, batch, *_):
        forward(st_peers["st"], batch, False, st_opt.autocast)

    tasks = {
        name: (rule, peers, links, opt, batches)
        for name, (peers, links, rule, opt) in built.items()
    }
    tasks["st_forward_nograd"] = (st_refresh, None, None, None, batches)
    for name in EM_TASKS:
        peers, links, rule, opt, em_batches = recipe_method(name, args.batches)
        tasks[name] = (rule, peers, links, opt, em_batches)
    for name in MLKD_TASKS:
        peers, links, rule, opt, mlkd_batches = mlkd_method(name, args.batches)
        tasks[name] = (rule, peers, links, opt, mlkd_batches)
    times: dict[str, list[float]] = {name: [] for name in tasks}
    cpu: dict[str, list[float]] = {name: [] for name in tasks}
    step, start = 0, time.perf_counter()
    for r in range(args.rounds + 1):
        if r > 2 and time.perf_counter() - start > args.budget:
            break
        for name, (rule, peers, links, opt, task_batches) in tasks.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for b in task_batches:
                step += 1
                rule(peers, links, b, step, opt, True)
            if r > 0:  # round 0 warms up
                times[name].append((time.perf_counter() - t0) / len(task_batches))
                cpu[name].append((time.process_time() - c0) / len(task_batches))
    ms = {n: round(1000 * statistics.median(v), 1) for n, v in times.items()}
    cpu_ms = {n: round(1000 * statistics.median(v), 1) for n, v in cpu.items()}
    out = {
        "ml_joint_over_sum": ms["st_mt_joint"] / (ms["st"] + ms["mt"]),
        "ml_alternating_over_joint": ms["st_mt_alternating"] / ms["st_mt_joint"],
        "em_ctc_over_ctc": ms["em_ctc"] / ms["ctc"],
        "em_aed_over_aed": ms["em_aed"] / ms["aed"],
        "mlkd_pair_over_sum": ms["mlkd_pair"] / (ms["student_a"] + ms["student_b"]),
    }
    out = {k: round(v, 3) for k, v in out.items()}
    out["ms"] = ms
    out["cpu_ms"] = cpu_ms  # process CPU time (both threads): less sensitive to other jobs
    out["rounds"] = len(times["st"])
    out["batch"] = [list(b.speech.shape) for b in batches]
    out["em_batches"] = {  # [B, frames, feats] (CTC) and [B, target tokens] (AED)
        n: [list((b.speech if b.speech is not None else b.tokens["target"]).shape) for b in t[4]]
        for n, t in tasks.items()
        if n in EM_TASKS or n in MLKD_TASKS
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
