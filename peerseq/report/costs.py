"""Model cost for the results pages: parameters, FLOPs per second of audio and CPU decoding
real-time factor of CTC models (paper 003's Tables 1 and 6), and parameter counts of paper-003
models built from a run's config (no weights, no corpus needed).

The paper-003 model builder is imported here only, so that its module can move without touching
the rest of the report.
"""

from __future__ import annotations

import copy
import functools
import time
from pathlib import Path

import torch
import yaml

from peerseq.decode.ctc import ctc_greedy
from peerseq.metrics.cost import count_parameters, flops_per_second_of_audio
from peerseq.models.asr_paper003 import PAPER_TABLE1, build_paper003, table1
from peerseq.report.compare import markdown_table


def config_params(run_dirs: list[Path], peer: str) -> int | None:
    """A peer's parameters, built from the first run config.yaml that exists (model.preset,
    size and overrides) on the meta device: counts only, nothing allocated."""
    for run in run_dirs:
        f = run / "config.yaml"
        if f.is_file():
            m = yaml.safe_load(f.read_text())["peers"][peer]["model"]
            with torch.device("meta"):
                model = build_paper003(m["preset"], m["size"], **m.get("overrides", {}))
            return count_parameters(model)
    return None


@functools.lru_cache(maxsize=4)
def _paper_size_costs(models: tuple[str, ...]) -> dict[str, dict]:
    counts = table1()
    out = {}
    for name in models:
        torch.manual_seed(0)
        model = build_paper003(name, "paper")
        out[name] = {
            "params": counts[name]["ours"],
            "paper_params": int(PAPER_TABLE1[name]),
            "flops_per_s": flops_per_second_of_audio(model, feat_dim=201),
        }
    return out


def paper_size_costs(models: list[str]) -> dict[str, dict]:
    """{model: {"params", "paper_params", "flops_per_s"}} at the paper's sizes (Table 1/6); the
    FLOPs are one forward over one second of 201-dim frames at 100 frames/s. Counted once per
    process (building and tracing the paper-size models takes seconds)."""
    return copy.deepcopy(_paper_size_costs(tuple(models)))


def trained_size_costs(models: list[str], size: str) -> dict[str, dict]:
    """{model: {"params", "flops_per_s"}} at the size the recipe trained (small, tiny)."""
    out = {}
    for name in models:
        model = build_paper003(name, size)
        out[name] = {
            "params": count_parameters(model),
            "flops_per_s": flops_per_second_of_audio(model, feat_dim=201),
        }
    return out


@torch.no_grad()
def decoding_rtf(run_dir: Path, peer: str, threads: int = 1, repeats: int = 2) -> dict | None:
    """CPU real-time factor of greedy CTC decoding of the test split by one peer of a run:
    seconds of compute per second of audio (features precomputed), on `threads` threads; the
    best of `repeats` passes (the first one warms caches). None when the run's weights or corpus
    are not on this machine (e.g. a report made from copied logs)."""
    from peerseq.errors import PeerseqError
    from peerseq.runs import load_run

    if not any((run_dir / w).exists() for w in ("best", "checkpoints/latest")):
        return None
    try:
        run = load_run(run_dir, device="cpu")
        batches = list(run.data.batches(run.exp.data.test_split, run.exp.data.limit_test))
    except (PeerseqError, OSError):
        return None
    model = run.peers[peer].model.eval()
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


def cost_section(sec: dict, systems: dict, seeds: dict[int, Path], scale: str):
    """Table 1 and Table 6: parameters and FLOPs per second of audio at the paper's size and at
    the trained size, and the CPU decoding RTF of each trained model of the first seed.
    sec["models"]: {paper-003 model: system key}; sec["paper_reduction"]: the paper's FLOP
    reduction of each student against sec["reference"] (in %)."""
    models = sec["models"]
    size = scale if scale in ("small", "tiny") else "paper"
    paper, trained = paper_size_costs(list(models)), trained_size_costs(list(models), size)
    first = seeds[min(seeds)]
    ref = sec["reference"]
    rows, rec = [], {}
    for name, key in models.items():
        run, peer, label = systems[key]["run"], systems[key]["peer"], systems[key]["label"]
        done = (first / run / "eval" / "test.json").is_file()
        rtf = decoding_rtf(first / run, peer) if done else None
        p, t = paper[name], trained[name]
        red = ""
        if name in sec["paper_reduction"]:
            ours = 100 * (1 - p["flops_per_s"] / paper[ref]["flops_per_s"])
            red = f" (−{ours:.1f}% of {sec['reference_label']}; "
            red += f"paper −{sec['paper_reduction'][name]:.1f}%)"
        rows.append(
            [
                label.split(" (")[0],
                f"{p['params'] / 1e6:.1f} M",
                f"{p['paper_params'] / 1e6:.1f} M",
                f"{p['flops_per_s'] / 1e9:.2f}{red}",
                f"{t['params'] / 1e6:.2f} M",
                f"{t['flops_per_s'] / 1e9:.3f}",
                f"{rtf['rtf']:.4f}" if rtf else "—",
            ]
        )
        rec[name] = {"paper_size": p, f"{size}_size": t, "rtf": rtf}
    head = [h.format(size=size) for h in sec["head"]]
    md = [sec["title"] + "\n", markdown_table(head, rows), "", sec["after"]]
    return md, rec
