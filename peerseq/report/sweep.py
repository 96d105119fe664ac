"""Paper 002's Figure 6: the test score against each swept hyper-parameter, every seed drawn,
with its mean and spread, and the best value named only where the spread allows.

The swept runs are RUN_NAMEVALUE beside the method's own run RUN (em_alpha0, em_lambda0.3, ...
beside em, which is the point at the declared default values unless `default_run` names
another run: the sweep's own, where the sweep trains on a shorter budget than RUN). A value
is called the best of its axis when it beats every other value of that axis with p < alpha
(paired bootstrap over the test outputs of the seeds both points have, pooled, as a claim is
tested), on a majority of those seeds, with at least `min_seeds` of them. Otherwise the page
says which values the best mean cannot be told apart from.
"""

from __future__ import annotations

import re
from pathlib import Path

from peerseq.metrics.score import higher_is_better
from peerseq.report import figures
from peerseq.report.claims import gain, pooled_test
from peerseq.report.compare import SystemScores, markdown_table, score_system
from peerseq.report.recipe import Recipe
from peerseq.report.systems import DEFAULT_OUTPUTS, Group


def best_value(
    scores: dict[float, SystemScores],
    outs: dict[float, dict[int, Path]],
    metric: str,
    alpha: float = 0.05,
    min_seeds: int = 2,
) -> dict:
    """scores: value -> that point's scores over seeds; outs: value -> {seed: decoded test set}.
    -> {value: the best mean's value, separated: whether the spread allows calling it the best,
    against: {other value: {delta, p, seeds, seeds_agreeing}}} (delta: best minus other, in the
    metric's better direction, on the pooled outputs)."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    top = max(scores, key=lambda x: sign * scores[x].mean)
    against = {}
    for x in sorted(scores):
        if x == top:
            continue
        seeds = sorted(set(scores[top].scores) & set(scores[x].scores))
        score_top, score_x, p = pooled_test(outs[top], outs[x], seeds, metric)
        per_seed = [gain(metric, scores[top].scores[s], scores[x].scores[s]) for s in seeds]
        against[x] = {
            "delta": round(gain(metric, score_top, score_x), 2),
            "p": round(p, 4),
            "seeds": len(seeds),
            "seeds_agreeing": sum(d > 0 for d in per_seed),
        }
    separated = all(_beats(a, alpha) and a["seeds"] >= min_seeds for a in against.values())
    return {"value": top, "separated": separated, "against": against}


def _beats(a: dict, alpha: float) -> bool:
    """Does the best mean beat this other value: a gain with p < alpha on most seeds?"""
    return a["delta"] > 0 and a["p"] < alpha and 2 * a["seeds_agreeing"] > a["seeds"]


def _verdict_line(name: str, best: dict, scores: dict[float, SystemScores], alpha: float) -> str:
    top = best["value"]
    head = f"- **{name}**: the best mean is at {top:g} ({scores[top].mean:.2f})"
    if best["separated"]:
        return f"{head}, better than every other value with p < {alpha} on most seeds."
    close = [
        f"{x:g} ({a['delta']:+.2f}, p = {a['p']:.3f}, {a['seeds_agreeing']}/{a['seeds']} seeds)"
        for x, a in best["against"].items()
        if not _beats(a, alpha)
    ]
    if not close:  # every test passes, but on too few seeds
        return f"{head}; too few seeds to call it the best."
    return f"{head}, not told apart from {', '.join(close)}: no best value at this spread."


def _fmt(s: SystemScores) -> str:
    sd = f" ± {s.std:.2f}" if s.std is not None else ""
    return f"{s.mean:.2f}{sd}"


def sweep(rec: Recipe, g: Group, sec: dict):
    """The Figure 6 section: (Markdown lines, JSON {points: {axis: {value: {scores, mean, std,
    n}}}, best: {axis: best_value()}}), or nothing where fewer than three points exist."""
    metric, run = sec.get("metric", "bleu"), sec["run"]
    alpha, min_seeds = sec.get("alpha", 0.05), sec.get("min_seeds", 2)
    pattern = rec.data.get("outputs", DEFAULT_OUTPUTS)

    def outs(r: str) -> dict[int, Path]:
        return {s: d / pattern.format(run=r, peer="seq") for s, d in g.seeds.items()}

    axes = {k: {float(v): outs(sec.get("default_run", run))} for k, v in sec["default"].items()}
    for d in g.seeds.values():
        for p in d.glob(f"{run}_*"):
            m = re.fullmatch(rf"{run}_({'|'.join(axes)})([\d.]+)", p.name)
            if m:
                axes[m.group(1)][float(m.group(2))] = outs(p.name)
    scores = {
        k: {x: score_system(f"{k}={x:g}", o, metric) for x, o in v.items()} for k, v in axes.items()
    }
    scores = {k: {x: s for x, s in sorted(v.items()) if s.scores} for k, v in scores.items()}
    if sum(len(v) for v in scores.values()) <= 2:
        return [], None
    refs = {}
    for label, r in sec["references"].items():
        if (s := score_system(label, outs(r), metric)).scores:
            refs[label] = s.mean
    panels = [
        (sec["axes"][k], {x: list(s.scores.values()) for x, s in v.items()}, refs)
        for k, v in scores.items()
    ]
    out = g.vars["figdir"] / sec["file"].format(**g.vars)
    figures.sweep(panels, out, ylabel=f"test {metric.upper()}")
    best = {
        k: best_value(v, {x: axes[k][x] for x in v}, metric, alpha, min_seeds)
        for k, v in scores.items()
        if len(v) > 1
    }
    rows = [
        [
            k,
            f"{x:g}",
            ", ".join(f"{v:.2f}" for _, v in sorted(s.scores.items())),
            _fmt(s),
            "best mean" if k in best and x == best[k]["value"] else _against(best.get(k), x),
        ]
        for k, v in scores.items()
        for x, s in v.items()
    ]
    head = ["parameter", "value", f"test {metric.upper()} by seed", "mean ± sd",
            "best mean against this: gain (p, seeds agreeing)"]  # fmt: skip
    lines = [_verdict_line(sec["axes"][k], b, scores[k], alpha) for k, b in best.items()]
    md = [sec["title"] + "\n", f"![sweep](figures/{out.name})\n", markdown_table(head, rows), ""]
    md += lines + [""] if lines else []
    record = {
        "points": {k: {f"{x:g}": s.to_json() for x, s in v.items()} for k, v in scores.items()},
        "best": {k: _json_best(b) for k, b in best.items()},
    }
    return md, record


def _against(best: dict | None, x: float) -> str:
    if not best or x not in best["against"]:
        return ""
    a = best["against"][x]
    return f"{a['delta']:+.2f} (p = {a['p']:.3f}, {a['seeds_agreeing']}/{a['seeds']})"


def _json_best(b: dict) -> dict:
    """best_value()'s record with its values as the strings the points are keyed by."""
    return b | {
        "value": f"{b['value']:g}",
        "against": {f"{x:g}": a for x, a in b["against"].items()},
    }
