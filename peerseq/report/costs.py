"""Model cost for the results pages: parameters, FLOPs per second of audio and CPU decoding
real-time factor of CTC speech models (paper 003's Tables 1 and 6), and parameter counts of
models built from a run's config (no weights, no corpus needed).
"""

from __future__ import annotations

import copy
import functools
import time
from pathlib import Path

import torch
import yaml

from peerseq.metrics.cost import count_parameters, flops_per_second_of_audio
from peerseq.models import presets
from peerseq.report.compare import markdown_table
from peerseq.rundir.layout import RunDir
from peerseq.search.ctc import ctc_greedy

FEATS, CHARS = 201, 29  # paper 003's input (log spectrogram) and output (characters + blank)


def build_speech_ctc(preset: str, size: str, **overrides) -> torch.nn.Module:
    """A CTC speech model of the preset table at paper 003's input and output sizes."""
    return presets.build(preset, size, src_feats=FEATS, vocab=CHARS, **overrides)


def config_params(run_dirs: list[Path], peer: str) -> int | None:
    """A peer's parameters, built from the first run config.yaml that exists (model.preset,
    size and overrides) on the meta device: counts only, nothing allocated."""
    for run in run_dirs:
        f = RunDir(run).config
        if f.is_file():
            m = yaml.safe_load(f.read_text())["peers"][peer]["model"]
            with torch.device("meta"):
                model = build_speech_ctc(m["preset"], m["size"], **m.get("overrides", {}))
            return count_parameters(model)
    return None


@functools.lru_cache(maxsize=4)
def _paper_size_costs(models: tuple[tuple[str, str], ...]) -> dict[str, dict]:
    out = {}
    for name, preset in models:
        torch.manual_seed(0)
        model = build_speech_ctc(preset, "paper")
        out[name] = {
            "params": count_parameters(model),
            "flops_per_s": flops_per_second_of_audio(model, feat_dim=FEATS),
        }
    return out


def paper_size_costs(models: dict[str, str]) -> dict[str, dict]:
    """{model: {"params", "flops_per_s"}} at the paper's sizes (Table 1/6) of {model: preset};
    the FLOPs are one forward over one second of 201-dim frames at 100 frames/s. Counted once
    per process (building and tracing the paper-size models takes seconds)."""
    return copy.deepcopy(_paper_size_costs(tuple(models.items())))


def trained_size_costs(models: dict[str, str], size: str) -> dict[str, dict]:
    """{model: {"params", "flops_per_s"}} at the size the recipe trained (small, tiny)."""
    out = {}
    for name, preset in models.items():
        model = build_speech_ctc(preset, size)
        out[name] = {
            "params": count_parameters(model),
            "flops_per_s": flops_per_second_of_audio(model, feat_dim=FEATS),
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

    if RunDir(run_dir).last_weights_written() is None:
        return None
    try:
        run = load_run(run_dir, device="cpu")
        batches = list(run.data.batches(run.exp.data.test_split))
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
    sec["models"]: {model: system key}; sec["presets"]: {model: its preset};
    sec["paper_params"]: the paper's parameter count of each model (its Table 1);
    sec["paper_reduction"]: the paper's FLOP reduction of each student against
    sec["reference"] (in %)."""
    models, kinds = sec["models"], sec["presets"]
    size = scale if scale in ("small", "tiny") else "paper"
    paper, trained = paper_size_costs(kinds), trained_size_costs(kinds, size)
    for name in models:  # the paper's own count beside ours, from the declaration
        paper[name] = {
            "params": paper[name]["params"],
            "paper_params": int(sec["paper_params"][name]),
            "flops_per_s": paper[name]["flops_per_s"],
        }
    first = seeds[min(seeds)]
    ref = sec["reference"]
    rows, rec = [], {}
    for name, key in models.items():
        run, peer, label = systems[key]["run"], systems[key]["peer"], systems[key]["label"]
        done = RunDir(first / run).scores("test").is_file()
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
