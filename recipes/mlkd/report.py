"""Paper 003 (mutual-learning sequence-level KD) results from the runs reproduce.sh trained:
RESULTS.md, RESULTS.json and Figure 3 (RESULTS-figure3-student_{a,b}.png).

    python recipes/mlkd/report.py --root exp/mlkd/small --corpus fsdd-connected --scale small \
        --results recipes/mlkd/results

ROOT/CORPUS/sSEED/METHOD are the runs. Every student is scored from its run
(`peerseq evaluate`: greedy CTC) on the whole test split: CER and WER, mean ± sd over seeds.
MLKD is tested against seqKD with a paired bootstrap, seed by seed. A hand-written
notes-SCALE.md beside this file, if present, is included as the findings section.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import yaml
from costs import (  # this folder: run as a script, its folder is on sys.path
    PAPER_FLOP_REDUCTION,
    decoding_rtf,
    paper_size_costs,
    trained_size_costs,
)
from peerseq.models.asr_paper003 import build_paper003

from peerseq.metrics.cost import count_parameters
from peerseq.report import figures
from peerseq.report.compare import (
    compare,
    fmt_score,
    fmt_tests,
    markdown_table,
    score_system,
    seeds_of,
)
from peerseq.report.logger import logged_runs
from peerseq.rundir.log import read_metrics

HERE = Path(__file__).resolve().parent
# system key -> (run, peer, label); Student A is the WIDE student (2 BLSTM x 512 at paper size),
# Student B the DEEP one (5 x 256): the paper's Table 1 counts (see asr_paper003.py)
SYSTEMS = {
    "teacher_a": ("teacher_a", "teacher_a", "Teacher A (DeepSpeech2)"),
    "teacher_b": ("teacher_b", "teacher_b", "Teacher B (CRNN)"),
    "a": ("students", "a", "Student A (wide)"),
    "a_seqkd": ("seqkd", "a", "Student A + seqKD"),
    "a_mlkd": ("mlkd", "a", "A + MLKD (with Student B)"),
    "a_multi": ("multi", "a", "Student A + multi-teacher"),
    "a_mlkd_multi": ("mlkd_multi", "a", "A + MLKD (with Student B & multi-teacher)"),
    "b": ("students", "b", "Student B (deep)"),
    "b_seqkd": ("seqkd", "b", "Student B + seqKD"),
    "b_mlkd": ("mlkd", "b", "B + MLKD (with Student A)"),
    "b_multi": ("multi", "b", "Student B + multi-teacher"),
    "b_mlkd_multi": ("mlkd_multi", "b", "B + MLKD (with Student A & multi-teacher)"),
    "aa_1": ("mlkd_aa", "a", "A + MLKD with another Student A (first)"),
    "aa_2": ("mlkd_aa", "b", "A + MLKD with another Student A (second)"),
    "bb_1": ("mlkd_bb", "a", "B + MLKD with another Student B (first)"),
    "bb_2": ("mlkd_bb", "b", "B + MLKD with another Student B (second)"),
    "a_seqkd_b": ("seqkd_b", "a", "Student A + seqKD from Teacher B"),
    "a_mlkd_b": ("mlkd_b", "a", "A + MLKD (with Student B), Teacher B"),
    "b_seqkd_b": ("seqkd_b", "b", "Student B + seqKD from Teacher B"),
    "b_mlkd_b": ("mlkd_b", "b", "B + MLKD (with Student A), Teacher B"),
    "three_a": ("mlkd_three", "a", "A in MLKD with B and C (three students)"),
    "three_b": ("mlkd_three", "b", "B in MLKD with A and C (three students)"),
    "three_c": ("mlkd_three", "c", "C (deep) in MLKD with A and B (three students)"),
}
PAPER_TIMIT_CER = {  # Tables 2 and 4 of the paper (TIMIT test CER)
    "teacher_a": 20.348,
    "teacher_b": 20.104,
    "a": 28.393,
    "a_seqkd": 25.836,
    "a_mlkd": 24.757,
    "a_multi": 25.103,
    "a_mlkd_multi": 23.685,
    "b": 27.818,
    "b_seqkd": 26.064,
    "b_mlkd": 24.733,
    "b_multi": 24.984,
    "b_mlkd_multi": 22.496,
}
TABLE2 = ["teacher_a", "a", "a_seqkd", "a_mlkd", "b", "b_seqkd", "b_mlkd"]
TABLE4 = ["teacher_a", "teacher_b", "a_multi", "a_mlkd", "a_mlkd_multi", "b_multi", "b_mlkd"]
TABLE4 += ["b_mlkd_multi"]
TABLE5 = ["aa_1", "aa_2", "a_mlkd", "bb_1", "bb_2", "b_mlkd", "three_a", "three_b", "three_c"]
KD_B = ["teacher_b", "a", "a_seqkd_b", "a_mlkd_b", "b", "b_seqkd_b", "b_mlkd_b"]
TESTS = {  # system -> baselines it is paired against
    "a_seqkd": ["a"],
    "a_mlkd": ["a_seqkd", "a"],
    "b_seqkd": ["b"],
    "b_mlkd": ["b_seqkd", "b"],
    "a_multi": ["a_seqkd"],
    "a_mlkd_multi": ["a_multi", "a_mlkd"],
    "b_multi": ["b_seqkd"],
    "b_mlkd_multi": ["b_multi", "b_mlkd"],
    "aa_1": ["a_mlkd"],
    "aa_2": ["a_mlkd"],
    "bb_1": ["b_mlkd"],
    "bb_2": ["b_mlkd"],
    "a_seqkd_b": ["a"],
    "a_mlkd_b": ["a_seqkd_b", "a"],
    "b_seqkd_b": ["b"],
    "b_mlkd_b": ["b_seqkd_b", "b"],
    "three_a": ["a_mlkd"],
    "three_b": ["b_mlkd"],
}
FIG3 = {  # Figure 3: dev CER per epoch of each variant of one student
    f"student_{s}": [s, f"{s}{s}_1"]
    + [f"{s}_{v}" for v in ("seqkd", "mlkd", "multi", "mlkd_multi", "seqkd_b", "mlkd_b")]
    for s in ("a", "b")
}


def outputs(seeds: dict[int, Path], key: str) -> dict[int, Path]:
    run, peer, _ = SYSTEMS[key]
    return {s: d / run / "eval" / f"{peer}.test.jsonl" for s, d in seeds.items()}


def _present(seeds: dict[int, Path], key: str) -> bool:
    return any(p.is_file() for p in outputs(seeds, key).values())


def _params(seeds: dict[int, Path], key: str) -> int | None:
    """The student's (or teacher's) parameters, built from its run's config (model.preset,
    size and overrides); the frozen teachers of a student run are not counted."""
    run, peer, _ = SYSTEMS[key]
    for d in seeds.values():
        f = d / run / "config.yaml"
        if f.is_file():
            m = yaml.safe_load(f.read_text())["peers"][peer]["model"]
            with torch.device("meta"):  # counts only, nothing allocated
                model = build_paper003(m["preset"], m["size"], **m.get("overrides", {}))
            return count_parameters(model)
    return None


def system_table(keys: list[str], seeds: dict[int, Path]) -> tuple[str, dict]:
    """Rows: label, parameters (% of Teacher A), test CER, test WER, the paper's TIMIT CER, and
    paired bootstrap tests (CER) against the baselines in TESTS."""
    teacher = _params(seeds, "teacher_a")
    rows, rec = [], {}
    for key in keys:
        if not _present(seeds, key):
            continue
        outs = outputs(seeds, key)
        c, w = score_system(key, outs, "cer"), score_system(key, outs, "wer")
        params = _params(seeds, key)
        size = f"{params / 1e6:.2f} M" if params else "—"
        if params and teacher and key != "teacher_a":
            size += f" ({100 * params / teacher:.1f}%)"
        tests = {
            base: compare(outs, outputs(seeds, base), "cer")
            for base in TESTS.get(key, [])
            if _present(seeds, base)
        }
        shown = "; ".join(
            f"vs {SYSTEMS[b][2]}: {fmt_tests(t, 'cer')}" for b, t in tests.items() if t
        )
        paper = PAPER_TIMIT_CER.get(key)
        rows.append(
            [
                SYSTEMS[key][2],
                size,
                fmt_score(c),
                fmt_score(w),
                f"{paper:.2f}" if paper else "—",
                shown or "—",
            ]
        )
        rec[key] = {
            "run": SYSTEMS[key][0],
            "peer": SYSTEMS[key][1],
            "cer": c.to_json(),
            "wer": w.to_json(),
            "parameters": params,
            "paper_timit_cer": paper,
            "tests_cer": {b: [t.__dict__ for t in ts] for b, ts in tests.items()},
        }
    head = [
        "system",
        "parameters (of Teacher A)",
        "test CER",
        "test WER",
        "paper, TIMIT CER",
        "CER gain, paired bootstrap (p, seed)",
    ]
    return markdown_table(head, rows), rec


def dev_curves(seeds: dict[int, Path], key: str) -> tuple[list[float], list[float]] | None:
    """Dev CER by epoch (1 = after the first epoch: a dev record's epoch counts completed ones),
    mean over seeds that have the run."""
    run, peer, _ = SYSTEMS[key]
    per_seed = []
    for d in seeds.values():
        f = d / run / "metrics.jsonl"
        if not f.is_file():
            continue
        dev = [r for r in read_metrics(f) if r["split"] == "dev" and f"{peer}/cer" in r]
        per_seed.append({r["epoch"]: r[f"{peer}/cer"] for r in dev})  # epochs completed
    if not per_seed:
        return None
    epochs = sorted(set.intersection(*(set(c) for c in per_seed)))
    return [float(e) for e in epochs], [statistics.fmean(c[e] for c in per_seed) for e in epochs]


def figure3(seeds: dict[int, Path], stem: Path) -> dict[str, dict]:
    out = {}
    for student, keys in FIG3.items():
        series = {SYSTEMS[k][2]: c for k in keys if (c := dev_curves(seeds, k))}
        if not series:
            continue
        path = stem.parent / f"{stem.name}-figure3-{student}.png"
        figures.curves(
            series,
            path,
            xlabel="epoch",
            ylabel="dev CER (%)",
            title=f"Figure 3: dev CER of {student.replace('_', ' ').title()}'s variants",
        )
        out[student] = {"figure": path.name, "series": {k: list(v) for k, v in series.items()}}
    return out


def cost_table(seeds: dict[int, Path], size: str) -> tuple[str, dict]:
    """Table 1 and Table 6: parameters and FLOPs per second of audio at the paper's size and at
    the trained size, and the CPU decoding RTF of each trained model of the first seed."""
    paper, trained = paper_size_costs(), trained_size_costs(size)
    first = seeds[min(seeds)]
    rows, rec = [], {}
    for name, key in [
        ("teacher_a", "teacher_a"),
        ("teacher_b", "teacher_b"),
        ("student_a", "a"),
        ("student_b", "b"),
    ]:
        run, peer, label = SYSTEMS[key]
        done = (first / run / "eval" / "test.json").is_file()
        rtf = decoding_rtf(first / run, peer) if done else None
        p, t = paper[name], trained[name]
        red = ""
        if name.startswith("student"):
            ours = 100 * (1 - p["flops_per_s"] / paper["teacher_a"]["flops_per_s"])
            red = f" (−{ours:.1f}% of Teacher A; paper −{PAPER_FLOP_REDUCTION[name]:.1f}%)"
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
    head = [
        "model",
        "parameters, paper size (ours)",
        "Table 1 (paper)",
        "GFLOPs per s of audio, paper size",
        f"parameters, {size}",
        f"GFLOPs per s, {size}",
        f"CPU decoding RTF, {size} (1 thread, greedy)",
    ]
    return markdown_table(head, rows), rec


def log_summary(seed_dir: Path) -> list[list[str]]:
    rows = []
    for run, train, dev, minutes in logged_runs(seed_dir):
        peers = sorted({k.split("/")[0] for r in dev for k in r if k.endswith("/cer")})
        curves = "; ".join(
            f"{p}: " + " → ".join(f"{r[f'{p}/cer']:.1f}" for r in dev if f"{p}/cer" in r)
            for p in peers
        )
        rows.append(
            [run.name, str(train[-1]["step"]), str(train[-1]["epoch"] + 1), f"{minutes:.1f}"]
            + [curves or "—"]
        )
    return rows


def report(root: Path, corpus: str, scale: str, results: Path) -> dict:
    seeds = seeds_of(root / corpus)
    if not seeds:
        raise SystemExit(f"report.py: no runs under {root / corpus}/s*")
    size = "small" if scale == "small" else ("tiny" if scale == "tiny" else "paper")
    md = [
        f"# Paper 003 (mutual-learning sequence-level KD) at `{scale}` scale: {corpus}\n",
        "Generated by `recipes/mlkd/report.py` from the runs under "
        f"`{root / corpus}`, seeds {', '.join(map(str, sorted(seeds)))}. Every student is "
        "decoded by `peerseq evaluate RUN` (greedy CTC) on "
        "the whole test split; mean ± sd over seeds. Paired bootstrap: 1,000 resamples of test "
        "utterances, CER gain = baseline CER − system CER (positive: the system is better). "
        "The paper's column is its TIMIT test CER, for the ranking, not the level.\n",
    ]
    out: dict = {"scale": scale, "corpus": corpus, "seeds": sorted(seeds)}
    sections = [
        ("Table 2/3: seqKD and MLKD against students alone", TABLE2, "table2"),
        ("Table 4: multi-teacher", TABLE4, "table4"),
        ("Table 5: same-structure against distinct-structure students", TABLE5, "table5"),
        ("Not in the paper: Teacher B as the one teacher (kd_b)", KD_B, "kd_b"),
    ]
    for title, keys, name in sections:
        table, rec = system_table(keys, seeds)
        if set(rec) - {"a", "b", "teacher_a", "teacher_b"}:  # not only the baselines
            out[name] = rec
            md += [f"## {title}\n", table, ""]
    table, out["costs"] = cost_table(seeds, size)
    md += [
        "## Table 1 and Table 6: parameters, FLOPs, decoding speed\n",
        table,
        "",
        "FLOPs: one forward over one second of 201-dim frames (100 frames/s), counted by "
        "`peerseq.metrics.cost` (torch's FLOP counter plus the LSTM recurrences). RTF: seconds "
        "of compute per second of test audio, features precomputed, best of two passes.\n",
    ]
    out["figure3"] = figure3(seeds, results)
    if out["figure3"]:
        md.append("## Figure 3: dev CER against epoch\n")
        md += [f"![{s}]({v['figure']})\n" for s, v in out["figure3"].items()]
    for seed, d in sorted(seeds.items()):
        md += [
            f"## Runs, seed {seed}\n",
            markdown_table(
                ["run", "updates", "epochs", "minutes", "dev CER by epoch"], log_summary(d)
            ),
            "",
        ]
    notes = HERE / f"notes-{scale}.md"
    if notes.is_file() and corpus == "fsdd-connected":
        md += [notes.read_text()]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".md").write_text("\n".join(md) + "\n")
    results.with_suffix(".json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, type=Path, help="OUT/SCALE of reproduce.sh")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--results", required=True, type=Path, help="stem of results.{md,json}")
    a = ap.parse_args()
    report(a.root, a.corpus, a.scale, a.results)
    print(f"wrote {a.results.with_suffix('.md')} and {a.results.with_suffix('.json')}")


if __name__ == "__main__":
    main()
