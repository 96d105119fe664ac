"""Paper 003 Table 1 and Table 6: parameters, FLOPs per second of audio, and CPU decoding
real-time factor, for the models report.py puts in its tables."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from peerseq.metrics.cost import count_parameters, flops_per_second_of_audio
from peerseq.models.asr_paper003 import PAPER_TABLE1, build_paper003, table1
from peerseq.runs import load_run
from peerseq.search.ctc import ctc_greedy

MODELS = ("teacher_a", "teacher_b", "student_a", "student_b")
# Table 6 of the paper gives parameters and FLOPs only as reductions against Teacher A (section
# 5.2.3): Student A -80% parameters, -81% FLOPs; Student B -86.6%, -84.4%.
PAPER_FLOP_REDUCTION = {"student_a": 81.0, "student_b": 84.4}


def paper_size_costs() -> dict[str, dict]:
    """{model: {"params", "paper_params", "flops_per_s"}} at the paper's sizes (Table 1/6); the
    FLOPs are one forward over one second of 201-dim frames at 100 frames/s."""
    counts = table1()
    out = {}
    for name in MODELS:
        torch.manual_seed(0)
        model = build_paper003(name, "paper")
        out[name] = {
            "params": counts[name]["ours"],
            "paper_params": int(PAPER_TABLE1[name]),
            "flops_per_s": flops_per_second_of_audio(model, feat_dim=201),
        }
    return out


def trained_size_costs(size: str) -> dict[str, dict]:
    """{model: {"params", "flops_per_s"}} at the size reproduce.sh trained (small, tiny)."""
    out = {}
    for name in MODELS:
        model = build_paper003(name, size)
        out[name] = {
            "params": count_parameters(model),
            "flops_per_s": flops_per_second_of_audio(model, feat_dim=201),
        }
    return out


@torch.no_grad()
def decoding_rtf(run_dir: Path, peer: str, threads: int = 1, repeats: int = 2) -> dict:
    """CPU real-time factor of greedy CTC decoding of the test split by one peer of a run:
    seconds of compute per second of audio (features precomputed, so feature extraction is not
    counted), on `threads` threads; the best of `repeats` passes (the first one warms caches)."""
    run = load_run(run_dir, device="cpu")
    model = run.peers[peer].model.eval()
    batches = list(run.data.batches(run.exp.data.test_split, run.exp.data.limit_test))
    frames = sum(int(b.speech_lengths.sum()) for b in batches)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in batches:
                o = model(b.speech, b.speech_lengths)
                ctc_greedy(o.log_probs, o.lengths)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    audio_s = frames / 100.0  # 10 ms frame shift
    return {"rtf": best / audio_s, "audio_seconds": round(audio_s, 1), "threads": threads}
