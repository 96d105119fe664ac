"""A paper's claims with their verdicts, in the form ../EVIDENCE.md asks of every recipe: per
claim the method's and the baseline's score on each seed, mean and standard deviation, one
paired bootstrap over the test outputs of all seeds pooled, how many seeds agree in sign, and a
verdict with its reason, all from the decoded test sets a recipe declares (recipe.yaml).

A claim is declared as
    {id, paper, claim, method, baseline, key, requires: [[better, than], ...]}
with method and baseline system keys of the recipe; `requires` are the ingredients the claim
presupposes (e.g. a teacher better than the student it teaches), checked on the mean score.

The verdict, in this order:
  inconclusive    fewer than `min_seeds` seeds of either system; a system at the metric's floor
                  or ceiling (FLOORS); a failed requirement; or a gain in the claimed direction
                  that is not significant (p >= `alpha`) or holds on no more than half the seeds
  not reproduced  no gain: the mean of the pooled outputs is as good or better for the baseline
  reproduced      a gain with p < alpha that a majority of the seeds agree on
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from peerseq.decoding.outputs import read_outputs
from peerseq.metrics.asr import paired_bootstrap_rate
from peerseq.metrics.bleu import paired_bootstrap
from peerseq.metrics.score import higher_is_better
from peerseq.report.compare import markdown_table, score_system
from peerseq.report.recipe import Recipe
from peerseq.report.systems import Group, outputs

# Where a metric cannot show a difference (EVIDENCE.md): (floor, ceiling) of the score; a system
# whose mean lies beyond either is "at the floor" (cannot get worse in a meaningful way: blank
# output, BLEU < 5) or "at the ceiling" (a nearly memorised test set).
FLOORS = {"wer": (90.0, 2.0), "cer": (80.0, 2.0), "bleu": (5.0, None), "chrf": (15.0, None)}
RESAMPLES = 1000  # bootstrap samples: the smallest p it can report is 1 / (RESAMPLES + 1)


def pooled(outs: dict[int, Path], seeds: list[int]) -> tuple[list[str], list[str], list[str]]:
    """(utterance keys, references, hypotheses) of the given seeds' outputs concatenated in seed
    order, each seed's utterances in id order, so two systems pool to the same pairing."""
    keys, refs, hyps = [], [], []
    for s in seeds:
        rows = read_outputs(outs[s])
        for i in sorted(rows):
            keys.append(f"{s}:{i}")
            hyps.append(rows[i][0])
            refs.append(rows[i][1])
    return keys, refs, hyps


def pooled_test(method: dict[int, Path], baseline: dict[int, Path], seeds: list[int], metric: str):
    """Paired bootstrap of method against baseline on all seeds' outputs pooled (seed s of one
    paired with seed s of the other) -> (pooled method score, pooled baseline score, p)."""
    k_m, refs, hyp_m = pooled(method, seeds)
    k_b, refs_b, hyp_b = pooled(baseline, seeds)
    if k_m != k_b or refs != refs_b:
        raise ValueError("the two systems' outputs are not the same utterances and references")
    if metric in ("wer", "cer"):
        unit = "word" if metric == "wer" else "char"
        t = paired_bootstrap_rate(refs, hyp_b, hyp_m, unit=unit, n=RESAMPLES)
        return t.rate_b, t.rate_a, t.p_value
    r = paired_bootstrap(refs, hyp_b, hyp_m, n=RESAMPLES, metric=metric)
    return r.score_b, r.score_a, r.p_value


def edge(metric: str, mean: float) -> str | None:
    """'at the floor' / 'at the ceiling' where `metric` cannot show a difference, else None."""
    floor, ceiling = FLOORS.get(metric, (None, None))
    worse_than_floor = mean <= floor if higher_is_better(metric) else mean >= floor
    if floor is not None and worse_than_floor:
        return "at the floor"
    if ceiling is not None and mean < ceiling:
        return "at the ceiling"
    return None


def gain(metric: str, better: float, worse: float) -> float:
    """How much `better` beats `worse` in the metric's direction (positive: it does)."""
    return better - worse if higher_is_better(metric) else worse - better


def verdict(c: dict, min_seeds: int, alpha: float, problems: list[str]) -> tuple[str, str]:
    """(verdict, why) of one evaluated claim record (see the module docstring)."""
    n = len(c["seeds"])
    if problems:
        return "inconclusive", "; ".join(problems)
    if n < min_seeds:
        return "inconclusive", f"{n} seed(s) of both systems; a verdict needs {min_seeds}"
    agree = f"better on {c['seeds_agreeing']} of {n} seeds"  # the method, seed by seed
    if c["delta"] <= 0:
        return "not reproduced", f"no gain: {c['delta']:+.2f} (p = {c['p']:.3f}); {agree}"
    if c["p"] >= alpha or 2 * c["seeds_agreeing"] <= n:
        return "inconclusive", f"gain {c['delta']:+.2f} but p = {c['p']:.3f}; {agree}"
    return "reproduced", f"gain {c['delta']:+.2f}, p = {c['p']:.3f}; {agree}"


def evaluate_claim(rec: Recipe, g: Group, decl: dict, metric: str, sec: dict) -> dict:
    """One declared claim -> its results.json record (EVIDENCE.md's schema)."""
    m_key, b_key = decl["method"], decl["baseline"]
    # a shared system (one run for every seed) is paired with each seed of the other
    m_out, b_out = outputs(rec, g, m_key, spread=True), outputs(rec, g, b_key, spread=True)
    m, b = score_system(m_key, m_out, metric), score_system(b_key, b_out, metric)
    label = {k: rec.systems[k]["label"] for k in (m_key, b_key)}
    # what each system is: a shared one is one run, with one score and no spread
    shown = {
        k: replace(x, scores={s: v for s, v in x.scores.items() if s == rec.shared_seed})
        if rec.systems[k].get("shared")
        else x
        for k, x in ((m_key, m), (b_key, b))
    }
    seeds = sorted(set(m.scores) & set(b.scores))
    record = {
        "id": decl["id"],
        "paper": decl["paper"],
        "claim": decl["claim"],
        "metric": metric.upper(),
        "higher_is_better": higher_is_better(metric),
        "key": bool(decl.get("key", False)),
        "method": label[m_key],
        "baseline": label[b_key],
        "systems": {
            label[k]: {
                "seeds": {str(s): round(v, 2) for s, v in sorted(x.scores.items())},
                "mean": None if x.mean is None else round(x.mean, 2),
                "sd": None if x.std is None else round(x.std, 2),
            }
            | ({"shared": True} if rec.systems[k].get("shared") else {})
            for k, x in ((b_key, shown[b_key]), (m_key, shown[m_key]))
        },
        "seeds": seeds,
    }
    problems = []
    for k, x in ((b_key, b), (m_key, m)):
        where = edge(metric, x.mean) if x.mean is not None else None
        if where:
            problems.append(f"{label[k]} is {where} ({metric.upper()} {x.mean:.1f})")
    for better, than in decl.get("requires", []):
        s_better = score_system(better, outputs(rec, g, better), metric).mean
        s_than = score_system(than, outputs(rec, g, than), metric).mean
        if s_better is None or s_than is None or gain(metric, s_better, s_than) <= 0:
            problems.append(
                f"needs {rec.systems[better]['label']} better than {rec.systems[than]['label']}"
            )
    if seeds:
        score_m, score_b, p = pooled_test(m_out, b_out, seeds, metric)
        per_seed = [gain(metric, m.scores[s], b.scores[s]) for s in seeds]
        record |= {
            "delta": round(gain(metric, score_m, score_b), 2),
            "p": round(p, 4),
            "p_min": round(1 / (RESAMPLES + 1), 4),
            "seeds_agreeing": sum(d > 0 for d in per_seed),
        }
    else:
        record |= {"delta": None, "p": None, "p_min": None, "seeds_agreeing": 0}
        problems.append("no seed with both systems decoded")
    record["verdict"], record["why"] = verdict(
        record, sec.get("min_seeds", 3), sec.get("alpha", 0.05), problems
    )
    return record


def _fmt(x: dict) -> str:
    if x["mean"] is None:
        return "—"
    if x.get("shared"):  # the same run on every seed: no spread to show
        return f"{x['mean']:.2f} (one run, shared by every seed)"
    return f"{x['mean']:.2f}" + (f" ± {x['sd']:.2f}" if x["sd"] is not None else "")


def claims(rec: Recipe, g: Group, sec: dict) -> tuple[list[str], list[dict] | None]:
    """The verdict table (Markdown lines) and the claims' records (JSON)."""
    metric = sec["metric"]
    records = [evaluate_claim(rec, g, c, c.get("metric", metric), sec) for c in sec["claims"]]
    rows = []
    for r in records:
        b, m = r["systems"][r["baseline"]], r["systems"][r["method"]]
        delta = "—" if r["delta"] is None else f"{r['delta']:+.2f}"
        if r["seeds"] and any(set(x["seeds"]) - {str(s) for s in r["seeds"]} for x in (b, m)):
            # the means beside it cover seeds the paired test cannot use: say which it used
            delta += f" (seed{'s' * (len(r['seeds']) > 1)} {', '.join(map(str, r['seeds']))})"
        p = "—" if r["p"] is None else f"{r['p']:.3f}"
        rows.append(
            [
                f"{r['claim']} ({r['paper']})" + (" **key**" if r["key"] else ""),
                f"{r['baseline']}: {_fmt(b)}",
                f"{r['method']}: {_fmt(m)}",
                delta,
                p,
                f"{r['seeds_agreeing']}/{len(r['seeds'])}",
                f"**{r['verdict']}**: {r['why']}",
            ]
        )
    head = ["claim", "baseline", "method", "gain", "p", "seeds agreeing", "verdict"]
    after = sec.get("after", "").format(p_min=1 / (RESAMPLES + 1), **g.vars)
    md = [sec["title"].format(**g.vars) + "\n", markdown_table(head, rows) + after, ""]
    return md, records
