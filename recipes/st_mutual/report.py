"""Tables 1 and 2 of paper 000 from the runs reproduce.sh trained: results.md and results.json.

    python recipes/st_mutual/report.py --root exp/st_mutual/small --scale small \
        --results recipes/st_mutual/results --recipe recipes/st_mutual

Every pair (en-de, en-fr) and seed (s1, s2, ...) found under ROOT is reported. Scores are
sacreBLEU on the test split; E2E+ML (and MT+ML) are tested against each baseline with sacreBLEU's
paired bootstrap, seed by seed. A hand-written RECIPE/notes-SCALE.md, if present, is included as
the findings section.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from peerseq.report.compare import (
    compare,
    fmt_score,
    fmt_tests,
    markdown_table,
    score_system,
)
from peerseq.rundir.log import read_metrics

# label, run, peer (outputs at RUN/eval/PEER.test.jsonl; the cascade at cascade/cascade.test)
TABLE1 = [
    ("Cascade", "cascade", None),
    ("E2E", "e2e", "st"),
    ("E2E+MTL", "mtl", "st"),
    ("E2E+KD", "kd", "st"),
    ("E2E+ML", "ml", "st"),
    ("E2E+ML*", "ml_joint", "st"),
]
TABLE2 = [
    ("MT", "mt", "mt"),
    ("MT+MTL", "mtl", "mt"),
    ("MT+ML", "ml", "mt"),
    ("MT* (joint vocabulary)", "mt_joint", "mt"),
    ("MT+ML*", "ml_joint", "mt"),
]
PAPER1 = {  # paper 000, Table 1: MuST-C En-Fr, En-Es
    "Cascade": (34.9, 28.0),
    "E2E": (32.8, 27.2),
    "E2E+MTL": (33.5, 27.5),
    "E2E+KD": (34.5, 27.9),
    "E2E+ML": (35.5, 28.5),
    "E2E+ML*": (36.3, 28.7),
}
PAPER2 = {"MT": (45.1, 35.4), "MT+MTL": (45.6, 35.3), "MT+ML": (45.8, 35.7)}
OURS = {1: "E2E+ML", 2: "MT+ML"}


def outputs(pair_dir: Path, run: str, peer: str | None) -> dict[int, Path]:
    found = {}
    for seed_dir in sorted(pair_dir.glob("s*")):
        m = re.fullmatch(r"s(\d+)", seed_dir.name)
        if not m:
            continue
        path = (
            seed_dir / "cascade" / "cascade.test.jsonl"
            if peer is None
            else seed_dir / run / "eval" / f"{peer}.test.jsonl"
        )
        found[int(m.group(1))] = path
    return found


def table(pair_dir: Path, rows, paper: dict, ours: str) -> tuple[str, dict]:
    systems = {label: outputs(pair_dir, run, peer) for label, run, peer in rows}
    scored = {label: score_system(label, outs, "bleu") for label, outs in systems.items()}
    header = [
        "Method",
        "BLEU (mean ± sd over seeds)",
        "per seed",
        f"{ours} against it",
        "paper En-Fr",
        "paper En-Es",
    ]
    lines, data = [], {}
    for label, s in scored.items():
        tests = compare(systems[ours], systems[label], "bleu") if label != ours else []
        per_seed = ", ".join(f"s{k}: {v:.2f}" for k, v in sorted(s.scores.items())) or "not run"
        ref = paper.get(label)
        lines.append(
            [
                label,
                fmt_score(s),
                per_seed,
                fmt_tests(tests, "bleu") if tests else "",
                f"{ref[0]}" if ref else "",
                f"{ref[1]}" if ref else "",
            ]
        )
        data[label] = s.to_json() | {
            f"{ours}_vs": [
                {"seed": t.seed, "delta": round(t.delta, 2), "p": t.p_value} for t in tests
            ]
        }
    signature = next((s.signature for s in scored.values() if s.signature), "")
    n = next((s.n for s in scored.values() if s.n), 0)
    note = (
        f'\n\n{n} test sentences; sacreBLEU {signature}. "{ours} against it": {ours} minus '
        "the row's BLEU, and the p-value of sacreBLEU's paired bootstrap (1000 resamples, "
        "two-sided: a significant loss gets a small p too), per seed.\n"
    )
    return markdown_table(header, lines) + note, {
        "signature": signature,
        "n": n,
        "systems": data,
    }


KNOWN = {run for _, run, _ in TABLE1 + TABLE2} | {"asr", "cascade"}


def other_runs(pair_dir: Path) -> tuple[str, dict]:
    """Runs beside the tables' own (e.g. ml.yaml with other overrides, trained by hand into the
    seed directory): each decoded peer's BLEU, tested against E2E+ML's ST and MT peers."""
    names = sorted({p.parent.parent.name for p in pair_dir.glob("s*/*/eval/*.test.jsonl")} - KNOWN)
    rows, data = [], {}
    for name in names:
        for peer, ours in (("st", "ml"), ("mt", "ml")):
            outs = outputs(pair_dir, name, peer)
            s = score_system(f"{name}:{peer}", outs, "bleu")
            if not s.scores:
                continue
            tests = compare(outs, outputs(pair_dir, ours, peer), "bleu")
            rows.append([name, peer, fmt_score(s), fmt_tests(tests, "bleu")])
            data[f"{name}:{peer}"] = s.to_json() | {
                "vs_ml": [{"seed": t.seed, "delta": round(t.delta, 2), "p": t.p_value}
                          for t in tests]
            }  # fmt: skip
    if not rows:
        return "", {}
    header = ["run", "peer", "BLEU", "against E2E+ML's same peer (delta, p, seed)"]
    return markdown_table(header, rows) + "\n", data


def log_summary(pair_dir: Path) -> str:
    """Per run: updates, epochs, wall time, best dev score and its step (from metrics.jsonl)."""
    rows = []
    for seed_dir in sorted(pair_dir.glob("s*")):
        for run in sorted(p for p in seed_dir.iterdir() if (p / "metrics.jsonl").is_file()):
            recs = read_metrics(run / "metrics.jsonl")
            if not recs:
                continue
            train = [r for r in recs if r["split"] == "train"]
            dev = [r for r in recs if r["split"] == "dev"]
            times = [r["time"] for r in recs if "time" in r]
            minutes = f"{(times[-1] - times[0]) / 60:.1f}" if len(times) > 1 else "—"
            best = ""
            best_file = run / "best" / "best.json"
            if best_file.is_file():
                b = json.loads(best_file.read_text())
                best = f"{b['peer']}/{b['metric']} {b['value']:.2f} at step {b['step']}"
            last_dev = " ".join(
                f"{k} {v:.2f}"
                for k, v in (dev[-1] if dev else {}).items()
                if "/" in k and not k.startswith("w:")
            )
            rows.append(
                [
                    seed_dir.name,
                    run.name,
                    str(recs[-1]["step"]),
                    str(recs[-1]["epoch"]),
                    minutes,
                    best,
                    last_dev,
                    f"{train[-1].get('total', float('nan')):.3f}" if train else "",
                ]
            )
    header = [
        "seed",
        "run",
        "updates",
        "epochs",
        "minutes",
        "best dev (early stopping)",
        "last dev",
        "last train loss",
    ]
    return markdown_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="OUT/SCALE of reproduce.sh")
    ap.add_argument("--scale", required=True)
    ap.add_argument("--results", type=Path, required=True, help="writes RESULTS.md, .json")
    ap.add_argument("--recipe", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()

    pairs = sorted(p for p in args.root.glob("en-*") if p.is_dir())
    md = [
        f"# Paper 000 reproduced at `{args.scale}` scale\n",
        "Written by `recipes/st_mutual/reproduce.sh` (report.py) from the runs under "
        f"`{args.root}`. BLEU on multi30k-speech test_2016 (beam 5) unless the runs say "
        "otherwise; every figure below is measured by those runs.\n",
    ]
    notes = args.recipe / f"notes-{args.scale}.md"
    if notes.is_file():
        md.append(notes.read_text().rstrip() + "\n")
    out = {"scale": args.scale, "pairs": {}}
    for pair_dir in pairs:
        t1, j1 = table(pair_dir, TABLE1, PAPER1, OURS[1])
        t2, j2 = table(pair_dir, TABLE2, PAPER2, OURS[2])
        md += [
            f"## {pair_dir.name}: Table 1, speech translation\n",
            t1,
            f"## {pair_dir.name}: Table 2, machine translation (the MT peer of each run, "
            "decoded from the reference transcript)\n",
            t2,
        ]
        t3, j3 = other_runs(pair_dir)
        if t3:
            md += [f"## {pair_dir.name}: other runs (variations of E2E+ML)\n", t3]
        md += [f"## {pair_dir.name}: training logs\n", log_summary(pair_dir) + "\n"]
        out["pairs"][pair_dir.name] = {"table1": j1, "table2": j2, "other_runs": j3}
    if not pairs:
        md.append(f"No runs found under `{args.root}`.\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".md").write_text("\n".join(md))
    args.results.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.results.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
