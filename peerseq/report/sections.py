"""The page sections besides system tables and logs: dev-curve figures, paper 002's repetition,
parameter and posteriorgram analyses, its loss curves, and plain text (the sweep of Figure 6 is
in sweep.py).
Each takes (recipe, group, section) and returns (Markdown lines, JSON value or None)."""

from __future__ import annotations

import statistics

import numpy as np

from peerseq.decoding.outputs import read_outputs
from peerseq.metrics.repetition import token_repetition_ratio
from peerseq.report import figures
from peerseq.report.analyses import em_parameters, posteriorgram_panels, teacher_forced_repetition
from peerseq.report.compare import markdown_table
from peerseq.report.recipe import Recipe
from peerseq.report.systems import Group, export_params
from peerseq.rundir.layout import RunDir
from peerseq.rundir.log import read_metrics


def dev_curves(rec: Recipe, g: Group, sec: dict):
    """One figure per declared list of systems: each system's dev METRIC by epoch (1 = after the
    first epoch), mean over the seeds that have the run."""
    metric, out = sec["metric"], {}
    for name, keys in sec["figures"].items():
        series = {}
        for key in keys:
            run, peer = rec.systems[key]["run"], rec.systems[key]["peer"]
            per_seed = []
            for d in g.seeds.values():
                if RunDir(d / run).metrics.is_file():
                    dev = [r for r in read_metrics(RunDir(d / run).metrics) if r["split"] == "dev"]
                    per_seed.append(
                        {r["epoch"]: r[f"{peer}/{metric}"] for r in dev if f"{peer}/{metric}" in r}
                    )
            if per_seed:
                epochs = sorted(set.intersection(*(set(c) for c in per_seed)))
                ys = [statistics.fmean(c[e] for c in per_seed) for e in epochs]
                series[rec.systems[key]["label"]] = ([float(e) for e in epochs], ys)
        if not series:
            continue
        path = g.vars["stem_path"].parent / sec["file"].format(
            stem=g.vars["stem_path"].name, name=name
        )
        title = sec["figure_title"].format(name=name.replace("_", " ").title())
        figures.curves(series, path, xlabel="epoch", ylabel=sec["ylabel"], title=title)
        out[name] = {"figure": path.name, "series": {k: list(v) for k, v in series.items()}}
    md = [sec["title"] + "\n"] + [f"![{s}]({v['figure']})\n" for s, v in out.items()] if out else []
    return md, out


def repetition(rec: Recipe, g: Group, sec: dict):
    """Token repetition ratio of each system's export: teacher-forced argmax (subwords) and its
    beam output (words), mean over seeds."""
    rows, data = [], {}
    for key in sec["systems"]:
        run, tf, beam = rec.systems[key]["run"], [], []
        for d in g.seeds.values():
            export = RunDir(d / run).export
            hyps_file = RunDir(export).outputs("seq", "test")
            if not hyps_file.is_file():
                continue
            tf.append(teacher_forced_repetition(export))
            beam.append(token_repetition_ratio([h for h, _ in read_outputs(hyps_file).values()]))
        if tf:
            data[run] = {"teacher_forced": tf, "beam_words": beam}
            shown = f"{np.mean(tf):.2f}" if None not in tf else "—"
            rows.append([rec.systems[key]["label"], shown, f"{np.mean(beam):.2f}"])
    return [sec["title"] + "\n", markdown_table(sec["head"], rows), ""], data


def parameters(rec: Recipe, g: Group, sec: dict):
    """Table 4: the inference model theta, the auxiliary network rho, and the offline teacher."""
    run = sec.get("run", "em")
    d = next((d / run for d in g.seeds.values() if RunDir(d / run).is_run()), None)
    counts = em_parameters(d) if d else None
    if counts is None:
        return [], {}
    theta, rho = counts["theta"], counts["rho"]
    teacher = export_params(g, sec["teacher_run"])
    rows = [
        ["sequence model theta (inference)", f"{theta:,}"],
        ["auxiliary network rho (training only)", f"{rho:,} ({100 * rho / theta:.1f}% of theta)"],
        ["EM-Network phi = theta + rho (training)", f"{theta + rho:,}"],
    ]
    if teacher:
        rows.append(["offline-KD teacher (training only)", f"{teacher:,}"])
    table = markdown_table(["part", "parameters"], rows) + f"\n\n{sec['note']}"
    return [sec["title"] + "\n", table, ""], {"theta": theta, "rho": rho, "teacher": teacher}


def posteriorgram(rec: Recipe, g: Group, sec: dict):
    first = min(g.seeds)
    p = posteriorgram_panels(g.seeds[first], sec["plain"], sec["em"])
    if p is None:
        return [], None
    out = g.vars["figdir"] / sec["file"].format(**g.vars)
    panels = [(name, np.asarray(post, dtype=np.float32)) for name, post in p["panels"]]
    figures.posteriorgrams(
        panels, p["labels"], out, title=f'{p["utterance"]}; reference "{p["reference"]}"'
    )
    fig = {"utterance": p["utterance"], "reference": p["reference"], "figure": out.name}
    md = [
        sec["title"] + "\n",
        f"![posteriorgrams](figures/{out.name})\n",
        f"Utterance `{p['utterance']}` (seed {first}), blank in row 0.\n",
    ]
    return md, fig


def loss_curves(rec: Recipe, g: Group, sec: dict):
    """Fig. 4: L_org (the sequence model's loss) and L_em (the EM-Network's) while training."""
    path = RunDir(g.seeds[min(g.seeds)] / sec.get("run", "em")).metrics
    if not path.is_file():
        return [], None
    loss, task = sec["loss"], g.vars["task"]
    train = [r for r in read_metrics(path) if r["split"] == "train" and f"seq/{loss}" in r]
    series = {
        f"L_org (seq/{loss})": ([r["step"] for r in train], [r[f"seq/{loss}"] for r in train]),
        f"L_em (em/{loss})": ([r["step"] for r in train], [r[f"em/{loss}"] for r in train]),
    }
    out = g.vars["figdir"] / sec["file"].format(**g.vars)
    title = f"EM-Network ({task.upper()}) training losses, {g.name}"
    figures.curves(
        series, out, ylabel=f"training {loss.upper()} loss (log scale)", logy=True, title=title
    )
    return [sec["title"] + "\n", f"![losses](figures/{out.name})\n"], None


def text(rec: Recipe, g: Group, sec: dict):
    return [line.format(**g.vars) for line in sec["lines"]], None
