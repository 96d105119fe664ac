"""Paper 002 (EM-Network) results from the runs reproduce.sh trained: results.md, results.json
and the figures.

    python recipes/em_network/report.py --root exp/em_network/small --scale small \
        --results recipes/em_network/results

ROOT/asr/CORPUS/sSEED/METHOD and ROOT/mt/PAIR/sSEED/METHOD are reported, whichever exist. Every
score is the EXPORTED sequence model's (METHOD/export, no auxiliary network) on the test split;
EM-Network is tested against each baseline with a paired bootstrap, seed by seed (sacreBLEU's
for BLEU, peerseq.metrics.asr's for WER). Figures go to RESULTS' folder, figures/. A hand-written
notes-SCALE.md beside this file, if present, is included as the findings section.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from analyses import (  # this folder: run as a script, its folder is on sys.path
    loss_curves,
    posteriorgram_figure,
    sweep_figure,
    teacher_forced_argmax,
)

from peerseq.decoding.outputs import read_outputs
from peerseq.metrics.asr import cer
from peerseq.metrics.bleu import chrf
from peerseq.metrics.cost import count_parameters
from peerseq.metrics.repetition import token_repetition_ratio
from peerseq.report.compare import (
    compare,
    fmt_score,
    fmt_tests,
    markdown_table,
    score_system,
    seeds_of,
)
from peerseq.report.logger import logged_runs
from peerseq.runs import load_run

HERE = Path(__file__).resolve().parent
ASR = [  # method dir, label (Table 1/5 analogue)
    ("ctc", "Conformer-CTC (theta alone)"),
    ("skd", "SKD: offline KD from the larger teacher (L2, Eq. 4)"),
    ("em", "EM-Network (theta, auxiliary network dropped)"),
    ("teacher", "Teacher (larger Conformer-CTC, for reference)"),
]
MT = [  # Table 2/6 analogue
    ("mt", "Transformer (theta alone)"),
    ("seqkd", "SeqKD (Kim & Rush) from the larger teacher"),
    ("rdrop", "R-Drop (alpha 5)"),
    ("em", "EM-Network (theta, alpha 2, lambda 0.5)"),
    ("teacher", "Teacher (larger Transformer, for reference)"),
]
PAPER = {  # what the paper's text gives (its tables did not survive extraction)
    ("mt", "em"): "IWSLT'14 En-De 29.84, De-En 36.47 BLEU (Table 6)",
}


def outputs(seeds: dict[int, Path], method: str) -> dict[int, Path]:
    return {s: d / method / "export" / "eval" / "seq.test.jsonl" for s, d in seeds.items()}


def _rate(path: Path, fn) -> float:
    rows = read_outputs(path)
    return fn([r for _, r in rows.values()], [h for h, _ in rows.values()])


# ---- main tables -------------------------------------------------------------------------------
def main_table(task: str, seeds: dict[int, Path]) -> tuple[str, dict]:
    methods = ASR if task == "asr" else MT
    metric = "wer" if task == "asr" else "bleu"
    em = outputs(seeds, "em")
    rows, record = [], {}
    for method, label in methods:
        outs = outputs(seeds, method)
        if not any(p.is_file() for p in outs.values()):
            continue
        s = score_system(label, outs, metric)
        second = {  # CER for ASR, chrF for MT, per seed
            seed: _rate(p, cer) if task == "asr" else _rate(p, lambda r, h: chrf(r, h)[0])
            for seed, p in outs.items()
            if p.is_file()
        }
        tests = compare(em, outs, metric) if method not in ("em", "teacher") else []
        params = _export_params(seeds, method)
        rows.append(
            [label, fmt_score(s), _fmt(second), f"{params / 1e6:.2f} M" if params else "—"]
            + [fmt_tests(tests, metric) if tests else "—"]
        )
        record[method] = {
            metric: s.to_json(),
            "cer" if task == "asr" else "chrf": {str(k): round(v, 2) for k, v in second.items()},
            "parameters": params,
            "em_vs_this": [t.__dict__ for t in tests],
            "signature": s.signature,
        }
    second_name = "CER" if task == "asr" else "chrF"
    head = [
        "system",
        f"test {metric.upper()}",
        f"test {second_name}",
        "parameters at inference",
        f"EM-Network vs this: {'WER' if task == 'asr' else 'BLEU'} gain (p, seed)",
    ]
    return markdown_table(head, rows), record


def _fmt(per_seed: dict[int, float]) -> str:
    if not per_seed:
        return "—"
    v = list(per_seed.values())
    return f"{np.mean(v):.2f}" + (f" ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else "")


def _export_params(seeds: dict[int, Path], method: str) -> int | None:
    for d in seeds.values():
        f = d / method / "export" / "export.json"
        if f.is_file():
            return json.loads(f.read_text())["parameters"]
    return None


def other_runs(task: str, seeds: dict[int, Path]) -> tuple[str, dict]:
    """Runs beside the table's (variations tried by hand, e.g. em_alpha20; for MT the
    em_alpha*/em_lambda* runs are Figure 6's): score, and a paired test against the plain model
    and against the EM-Network as configured."""
    known = {m for m, _ in (ASR if task == "asr" else MT)}
    metric = "wer" if task == "asr" else "bleu"
    sweep = re.compile(r"em_(alpha|lambda)[\d.]+")  # MT: Figure 6's runs, reported there
    names = sorted(n for n in _names(seeds) - known if not (task == "mt" and sweep.fullmatch(n)))
    plain = outputs(seeds, "ctc" if task == "asr" else "mt")
    rows, rec = [], {}
    for name in names:
        outs = outputs(seeds, name)
        if not any(p.is_file() for p in outs.values()):
            continue
        s = score_system(name, outs, metric)
        vs_plain = compare(outs, plain, metric)
        vs_em = compare(outs, outputs(seeds, "em"), metric)
        rows.append(
            [f"`{name}`", fmt_score(s), fmt_tests(vs_plain, metric), fmt_tests(vs_em, metric)]
        )
        rec[name] = {
            metric: s.to_json(),
            "vs_plain": [t.__dict__ for t in vs_plain],
            "vs_em": [t.__dict__ for t in vs_em],
        }
    head = [
        "run",
        f"test {metric.upper()}",
        "vs the plain model (gain, p, seed)",
        "vs EM-Network as configured",
    ]
    return (markdown_table(head, rows) if rows else ""), rec


def _names(seeds: dict[int, Path]) -> set[str]:
    return {p.name for d in seeds.values() for p in d.iterdir() if p.is_dir()}


# ---- Table 4: parameters of theta and rho ------------------------------------------------------
def params_table(task: str, seeds: dict[int, Path]) -> tuple[str, dict]:
    d = next((d / "em" for d in seeds.values() if (d / "em" / "config.yaml").is_file()), None)
    if d is None:
        return "", {}
    run = load_run(d, device="cpu")
    theta = count_parameters(run.peers["seq"].model)
    rho = count_parameters(run.peers["em"].model.aux)
    teacher = _export_params(seeds, "teacher")
    rec = {"theta": theta, "rho": rho, "teacher": teacher}
    rows = [
        ["sequence model theta (inference)", f"{theta:,}"],
        ["auxiliary network rho (training only)", f"{rho:,} ({100 * rho / theta:.1f}% of theta)"],
        ["EM-Network phi = theta + rho (training)", f"{theta + rho:,}"],
    ]
    if teacher:
        rows.append(["offline-KD teacher (training only)", f"{teacher:,}"])
    note = (
        "Paper: 13 M theta + 1 M rho (supervised Conformer-CTC), 93 M + 10 M (SSL ASR); "
        "19 M rho for MT."
    )
    return markdown_table(["part", "parameters"], rows) + f"\n\n{note}", rec


# ---- Table 3: token repetition ratio (MT) ------------------------------------------------------
def repetition_table(seeds: dict[int, Path]) -> tuple[str, dict]:
    rows, rec = [], {}
    for method, label in MT:
        tf, beam = [], []
        for d in seeds.values():
            if not (d / method / "export" / "eval" / "seq.test.jsonl").is_file():
                continue
            tf.append(token_repetition_ratio(teacher_forced_argmax(d / method / "export")))
            hyps = [h for h, _ in read_outputs(d / method / "export/eval/seq.test.jsonl").values()]
            beam.append(token_repetition_ratio(hyps))
        if tf:
            rec[method] = {"teacher_forced": tf, "beam_words": beam}
            rows.append([label, f"{np.mean(tf):.2f}", f"{np.mean(beam):.2f}"])
    head = ["system", "teacher-forced argmax, subwords (%)", "beam-4 output, words (%)"]
    return markdown_table(head, rows), rec


# ---- what the logs say -------------------------------------------------------------------------
def log_summary(seed_dir: Path) -> list[list[str]]:
    rows = []
    for run, train, dev, minutes in logged_runs(seed_dir):
        metric = next(
            (
                k
                for k in (dev[-1] if dev else {})
                if k.startswith("seq/") and k.split("/")[1] in ("wer", "cer", "bleu")
            ),
            None,
        )
        dev_curve = " → ".join(f"{r[metric]:.1f}" for r in dev if metric in r) if metric else "—"
        rows.append(
            [
                run.name,
                str(train[-1]["step"]),
                str(train[-1]["epoch"] + 1),
                f"{minutes:.1f}",
                f"{metric}: {dev_curve}" if metric else "—",
            ]
        )
    return rows


# ---- the page ----------------------------------------------------------------------------------
def report(root: Path, scale: str, results: Path) -> dict:
    figdir = results.parent / "figures"
    md = [
        f"# Paper 002 (EM-Network) at `{scale}` scale\n",
        "Generated by `recipes/em_network/report.py` from the runs under "
        f"`{root}`. Every score is the exported sequence model's (`peerseq export RUN --peer seq`,"
        " no auxiliary network) on the whole test split. Mean ± sd over seeds.\n",
    ]
    out: dict = {"scale": scale}
    for task in ("asr", "mt"):
        for sub in sorted(p for p in (root / task).glob("*") if p.is_dir()):
            seeds = seeds_of(sub)
            if not seeds:
                continue
            key = f"{task}/{sub.name}"
            rec: dict = {"seeds": sorted(seeds)}
            what = "ASR (Tables 1/5)" if task == "asr" else "MT (Tables 2/6)"
            md.append(f"## {what}: {sub.name}, seeds {', '.join(map(str, sorted(seeds)))}\n")
            table, rec["systems"] = main_table(task, seeds)
            md += [table, ""]
            table, rec["other_runs"] = other_runs(task, seeds)
            if table:
                md += ["### Other runs (variations, see the notes)\n", table, ""]
            if (task, "em") in PAPER:
                md.append(f"Paper: {PAPER[(task, 'em')]}.\n")
            if task == "mt":
                table, rec["repetition"] = repetition_table(seeds)
                md += ["### Table 3: token repetition ratio (test)\n", table, ""]
            table, rec["parameters"] = params_table(task, seeds)
            if table:
                md += ["### Table 4: parameters\n", table, ""]
            first = seeds[min(seeds)]
            stem = f"{task}-{sub.name}"
            if task == "asr":
                fig = posteriorgram_figure(first, figdir / f"posteriorgram-{stem}.png")
                if fig:
                    rec["posteriorgram"] = fig
                    md += [
                        "### Figure 3/5: posteriorgrams\n",
                        f"![posteriorgrams](figures/{fig['figure']})\n",
                        f"Utterance `{fig['utterance']}` (seed {min(seeds)}), blank in row 0.\n",
                    ]
            curve = loss_curves(first, task, figdir / f"losses-{stem}.png")
            if curve:
                md += [
                    "### Figure 4: training losses of the EM-Network\n",
                    f"![losses](figures/{curve})\n",
                ]
            if task == "mt":
                sw = sweep_figure(seeds, figdir / f"sweep-{stem}.png")
                if sw:
                    rec["sweep"] = sw
                    md += [
                        "### Figure 6: alpha and lambda\n",
                        f"![sweep](figures/sweep-{stem}.png)\n",
                        markdown_table(
                            ["parameter", "test BLEU by value"],
                            [
                                [k, ", ".join(f"{x}: {y}" for x, y in v.items())]
                                for k, v in sw.items()
                            ],
                        ),
                        "",
                    ]
            for seed, d in sorted(seeds.items()):
                md += [
                    f"### Runs, seed {seed}\n",
                    markdown_table(
                        ["run", "updates", "epochs", "minutes", "dev curve"], log_summary(d)
                    ),
                    "",
                ]
            out[key] = rec
    notes = HERE / f"notes-{scale}.md"
    if notes.is_file():
        md += [notes.read_text()]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".md").write_text("\n".join(md) + "\n")
    results.with_suffix(".json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, type=Path, help="OUT/SCALE of reproduce.sh")
    ap.add_argument("--scale", required=True)
    ap.add_argument("--results", required=True, type=Path, help="stem of results.{md,json}")
    a = ap.parse_args()
    report(a.root, a.scale, a.results)
    print(f"wrote {a.results.with_suffix('.md')} and {a.results.with_suffix('.json')}")


if __name__ == "__main__":
    main()
