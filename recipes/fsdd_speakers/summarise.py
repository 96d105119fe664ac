"""The README's table from the committed logs: per seed, the unseen speaker's test WER of the
plain and the augmented run (last weights), their paired bootstrap p-value (1,000 resamples
of the 500 independent test recordings), the seen speakers' last dev WER and the last training
CTC loss; then mean and standard deviation over the seeds.

    .venv/bin/python recipes/fsdd_speakers/summarise.py [LOGS] [--seeds "1 2 3"]

LOGS holds {ctc,ctc_augmented}/s{seed}/metrics.jsonl and eval/seq.test.jsonl (a run directory's
files, as `peerseq evaluate RUN --weights last` leaves them); default: logs/ here.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from peerseq.metrics.asr import paired_bootstrap_rate

SYSTEMS = ("ctc", "ctc_augmented")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _last(records: list[dict], split: str, key: str) -> float:
    return [r[key] for r in records if r.get("split") == split][-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="?", type=Path, default=Path(__file__).parent / "logs")
    ap.add_argument("--seeds", default="1 2 3")
    args = ap.parse_args()
    print("| seed | plain test WER | augmented test WER | p | plain dev WER | augmented dev WER "
          "| plain train CTC | augmented train CTC |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    tests: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    for seed in args.seeds.split():
        runs = {s: args.logs / s / f"s{seed}" for s in SYSTEMS}
        metrics = {s: _jsonl(r / "metrics.jsonl") for s, r in runs.items()}
        hyps = {s: _jsonl(r / "eval" / "seq.test.jsonl") for s, r in runs.items()}
        a, b = hyps["ctc"], hyps["ctc_augmented"]
        if [x["id"] for x in a] != [x["id"] for x in b]:
            raise SystemExit(f"seed {seed}: the two runs decoded different test sets")
        t = paired_bootstrap_rate(
            [x["ref"] for x in a], [x["hyp"] for x in a], [x["hyp"] for x in b]
        )
        tests["ctc"].append(t.rate_a)
        tests["ctc_augmented"].append(t.rate_b)
        dev = [_last(metrics[s], "dev", "seq/wer") for s in SYSTEMS]
        ctc = [_last(metrics[s], "train", "seq/ctc") for s in SYSTEMS]
        print(f"| {seed} | {t.rate_a:.1f} | {t.rate_b:.1f} | {t.p_value:.3f} | {dev[0]:.2f} | "
              f"{dev[1]:.2f} | {ctc[0]:.3f} | {ctc[1]:.3f} |")  # fmt: skip
    if len(tests["ctc"]) > 1:
        mean = {
            s: f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" for s, v in tests.items()
        }
        print(f"| mean ± sd | {mean['ctc']} | {mean['ctc_augmented']} | | | | | |")


if __name__ == "__main__":
    main()
