"""What the training logs say, one row per run (from each run's metrics.jsonl): updates, epochs,
wall-clock minutes and a dev summary, in one of three declared styles.

peer_curves   every peer's dev curve in the first of METRICS it logged, one table per seed
seq_curve     the `seq` peer's dev curve in the first of METRICS it logged, one table per seed
best_and_last the early-stopping best (best/best.json), the last dev record and the last
              training loss, one table for all seeds
"""

from __future__ import annotations

import json
from pathlib import Path

from peerseq.report.compare import markdown_table
from peerseq.rundir.layout import RunDir
from peerseq.rundir.log import read_metrics


def training_minutes(recs: list[dict]) -> float:
    """Wall-clock minutes a run trained: the sum over its stretches (each (re)start writes a
    `start` record), so the hours between a stop and its resume are not counted. Logs without
    `start` records are one stretch."""
    stretches, current = [], []
    for r in recs:
        if r["split"] == "start" and current:
            stretches.append(current)
            current = []
        if "time" in r:
            current.append(r["time"])
    stretches.append(current)
    return sum(t[-1] - t[0] for t in stretches if len(t) > 1) / 60


def environments(recs: list[dict]) -> list[str]:
    """Where a run trained, once each in order: "MACHINE, PRECISION" from its start records."""
    seen = [f"{r['machine']}, {r['precision']}" for r in recs if r["split"] == "start"]
    return list(dict.fromkeys(seen))


def logged_runs(seed_dir: str | Path) -> list[tuple[Path, list[dict], list[dict], float]]:
    """(run dir, train records, dev records, training minutes) of every run under seed_dir
    with a metrics.jsonl and at least one training record, in name order (recipes' logs)."""
    out = []
    for run in sorted(p for p in Path(seed_dir).iterdir() if RunDir(p).metrics.is_file()):
        recs = read_metrics(RunDir(run).metrics)
        train = [r for r in recs if r["split"] == "train"]
        if not train:
            continue
        out.append((run, train, [r for r in recs if r["split"] == "dev"], training_minutes(recs)))
    return out


def updates(train: list[dict], dev: list[dict]) -> int:
    """The run's last update: training records come every `log_every` updates, so a budget that
    is not a multiple of it (1,085 at 25) ends after the last of them, at its final validation."""
    return max(r["step"] for r in train + dev)


def where_trained(seed_dirs: list[Path]) -> str:
    """One line under a logs table: each machine and precision, with the runs trained on it
    (a run resumed elsewhere is under both); empty when no run logged where it trained."""
    by_env: dict[str, list[str]] = {}
    for d in seed_dirs:
        for run in sorted(p for p in Path(d).iterdir() if RunDir(p).metrics.is_file()):
            for env in environments(read_metrics(RunDir(run).metrics)):
                by_env.setdefault(env, []).append(run.name)
    if not by_env:
        return ""
    parts = [f"{env}: {', '.join(dict.fromkeys(runs))}" for env, runs in by_env.items()]
    return "Trained on: " + "; ".join(parts) + "."


def started_from(seed_dirs: list[Path]) -> str:
    """One line under a logs table: the weights the runs started from (each start record's
    `init`, rundir/provenance.py), by the name they were given (its last folder and peer) and
    the first 12 hex digits of their SHA-256, with how many runs started from them. Where one
    name stands for two sets of weights (its run was trained again) the line says so first and
    names the runs of each: they do not share their start. Empty when no run logged an init."""
    by_name: dict[str, dict[str, list[str]]] = {}
    for d in seed_dirs:
        for run in sorted(p for p in Path(d).iterdir() if RunDir(p).metrics.is_file()):
            starts = [r for r in read_metrics(RunDir(run).metrics) if r["split"] == "start"]
            for v in (starts[0].get("init", {}) if starts else {}).values():
                folder, _, peer = v["from"].rpartition(":")
                name = f"{Path(folder).parent.name}/{Path(folder).name}:{peer}"
                runs = by_name.setdefault(name, {}).setdefault(v["sha256"][:12], [])
                runs.append(f"{Path(d).name}/{run.name}")
    if not by_name:
        return ""
    split = {n: h for n, h in by_name.items() if len(h) > 1}
    warn = [
        f"**{n} names {len(h)} different sets of weights** ("
        + "; ".join(f"{sha}: {', '.join(dict.fromkeys(r))}" for sha, r in h.items())
        + ")"
        for n, h in split.items()
    ]
    same = [
        f"{n} {sha} ({len(set(r))} run{'s' * (len(set(r)) > 1)})"
        for n, h in by_name.items()
        if n not in split
        for sha, r in h.items()
    ]
    return "Started from (SHA-256): " + "; ".join(warn + same) + "."


def peer_curves(seed_dir: Path, metrics: list[str]) -> list[list[str]]:
    rows = []
    for run, train, dev, minutes in logged_runs(seed_dir):
        logged = {k for r in dev for k in r if "/" in k}
        peers = sorted({k.split("/")[0] for k in logged if k.split("/")[1] in metrics})
        curves = []
        for p in peers:  # e.g. an ASR peer's WER beside an MT peer's BLEU
            key = next(f"{p}/{m}" for m in metrics if f"{p}/{m}" in logged)
            name = p if len(metrics) == 1 else key
            curves.append(f"{name}: " + " → ".join(f"{r[key]:.1f}" for r in dev if key in r))
        curves = "; ".join(curves)
        rows.append(
            [run.name, str(updates(train, dev)), str(train[-1]["epoch"] + 1), f"{minutes:.1f}"]
            + [curves or "—"]
        )
    return rows


def seq_curve(seed_dir: Path, metrics: list[str]) -> list[list[str]]:
    rows = []
    for run, train, dev, minutes in logged_runs(seed_dir):
        last = dev[-1] if dev else {}
        metric = next(
            (k for k in last if k.startswith("seq/") and k.split("/")[1] in metrics), None
        )
        curve = " → ".join(f"{r[metric]:.1f}" for r in dev if metric in r) if metric else "—"
        rows.append(
            [
                run.name,
                str(updates(train, dev)),
                str(train[-1]["epoch"] + 1),
                f"{minutes:.1f}",
                f"{metric}: {curve}" if metric else "—",
            ]
        )
    return rows


def best_and_last(seed_dirs: dict[int, Path]) -> list[list[str]]:
    rows = []
    for seed_dir in seed_dirs.values():
        for run in sorted(p for p in seed_dir.iterdir() if RunDir(p).metrics.is_file()):
            recs = read_metrics(RunDir(run).metrics)
            if not recs:
                continue
            train = [r for r in recs if r["split"] == "train"]
            dev = [r for r in recs if r["split"] == "dev"]
            timed = sum("time" in r for r in recs) > 1
            minutes = f"{training_minutes(recs):.1f}" if timed else "—"
            best = ""
            if RunDir(run).best_record.is_file():
                b = json.loads(RunDir(run).best_record.read_text())
                best = f"{b['peer']}/{b['metric']} {b['value']:.2f} at step {b['step']}"
            last_dev = " ".join(
                f"{k} {v:.2f}"
                for k, v in (dev[-1] if dev else {}).items()
                if "/" in k and not k.startswith("w:")
            )
            loss = f"{train[-1].get('total', float('nan')):.3f}" if train else ""
            rows.append(
                [seed_dir.name, run.name, str(recs[-1]["step"]), str(recs[-1]["epoch"])]
                + [minutes, best, last_dev, loss]
            )
    return rows


HEADS = {
    "best_and_last": [
        "seed",
        "run",
        "updates",
        "epochs",
        "minutes",
        "best dev (early stopping)",
        "last dev",
        "last train loss",
    ],
}


def log_tables(sec: dict, seeds: dict[int, Path], fmt: dict) -> list[str]:
    """The section's Markdown lines: a titled table per seed, or one for all seeds."""
    style = sec.get("style", "peer_curves")
    if style == "best_and_last":
        table = markdown_table(HEADS[style], best_and_last(seeds))
        lines = [where_trained(list(seeds.values())), started_from(list(seeds.values()))]
        return [sec["title"].format(**fmt) + "\n", table + sec.get("after", "")] + [
            line + "\n" for line in lines if line
        ]
    md = []
    for seed, d in sorted(seeds.items()):
        if style == "peer_curves":
            rows = peer_curves(d, sec.get("metrics") or [sec["metric"]])
        else:
            rows = seq_curve(d, sec["metrics"])
        head = ["run", "updates", "epochs", "minutes", sec["last_column"]]
        md += [sec["title"].format(seed=seed, **fmt) + "\n", markdown_table(head, rows), ""]
        where = where_trained([d])
        md += [where, ""] if where else []
    start = started_from(list(seeds.values()))  # across seeds: shared runs serve them all
    return md + ([start, ""] if start else [])
