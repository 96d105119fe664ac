"""`make demo`: prepare every bundled corpus and print a table of them, then run paper 000's
recipe at demo size (ASR and MT pre-training, E2E ST, ST<->MT mutual learning) and print E2E
and E2E+ML test BLEU side by side, next to what chance gets.
"""

from __future__ import annotations

from pathlib import Path

from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.stats import corpus_stats
from peerseq.report.tables import print_corpus_table
from peerseq.rundir.layout import RunDir

# multi30k-speech is synthesised: the demo makes the first 300 sentences of each split, which
# takes seconds; `peerseq prepare multi30k-speech --out DIR` makes all 29,000.
DEMO_CORPORA = {
    "fsdd": {},
    "fsdd-connected": {},
    "yesno": {},
    "librivox5": {},
    "multi30k": {},
    "multi30k-speech": {"limit": 300, "vocab_size": 1000},  # st_mutual reproduce --scale tiny
}


RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "st_mutual"


def run_demo(workdir: Path) -> list[dict]:
    stats = []
    for name, kw in DEMO_CORPORA.items():
        out = workdir / "data" / name
        # force: the demo's own copies follow this version's settings (an earlier demo's
        # fsdd-connected, say, reused recordings in dev and test)
        prepare(PrepareArgs(name=name, out=out, force=True, **kw))
        stats.append(corpus_stats(out))
    print_corpus_table(stats)
    e2e_vs_ml(workdir)
    return stats


def e2e_vs_ml(workdir: Path) -> dict:
    """Paper 000 at demo size: peerseq reproduce recipes/st_mutual --scale tiny --methods "e2e ml"
    (it pre-trains the ASR encoder and the MT peer first) on the demo's multi30k-speech, then
    E2E and E2E+ML test BLEU side by side, with what chance gets."""
    import json
    import os
    import subprocess
    import sys

    from rich.console import Console
    from rich.table import Table

    from peerseq.data.manifest import load_text_split
    from peerseq.metrics.score import chance_score

    corpus = workdir / "data" / "multi30k-speech"  # prepared above with the tiny scale's args
    out, results = workdir / "st_mutual", workdir / "st_mutual" / "results"
    peerseq = str(Path(sys.executable).parent / "peerseq")
    cmd = [peerseq, "reproduce", str(RECIPE), "--scale", "tiny", "--methods", "e2e ml",
           "--data", str(corpus), "--out", str(out), "--results", str(results)]  # fmt: skip
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=os.environ)
    report = json.loads(results.with_suffix(".json").read_text())["pairs"]["en-de"]
    train_de = [r["de"] for r in load_text_split(corpus, "train")]
    refs = [r["de"] for r in load_text_split(corpus, "test")][: report["table1"]["n"]]
    chance = chance_score(refs, train_de, "bleu")
    table = Table(title=f"paper 000 at demo size: test BLEU on {len(refs)} sentences")
    for col in ("system", "test BLEU", "chance BLEU", "dev loss (last validation)"):
        table.add_column(col)
    # run, peer, Table, row: the ST and MT peers of the E2E and ML runs
    rows = [("e2e", "st", "table1", "E2E"), ("ml", "st", "table1", "E2E+ML"),
            ("mt", "mt", "table2", "MT"), ("ml", "mt", "table2", "MT+ML")]  # fmt: skip
    shown = {}
    for run, peer, tab, key in rows:
        shown[key] = report[tab]["systems"][key]["mean"]
        lines = RunDir(out / "tiny" / "en-de" / "s1" / run).metrics.read_text().splitlines()
        dev = [r for r in map(json.loads, lines) if r["split"] == "dev"][-1]
        label = f"{key} ({peer} peer)"
        table.add_row(label, f"{shown[key]:.2f}", f"{chance:.2f}", f"{dev[f'{peer}/nll']:.3f}")
    console = Console()
    console.print(table)
    console.print(
        "Tiny models after about a minute of CPU training each: their NLL falls, but they have "
        "not yet learnt to translate (chance = random training sentences). The comparison at "
        f"a size where it means something: {RECIPE / 'results.md'} "
        "(peerseq reproduce recipes/st_mutual --scale small).",
        highlight=False,
    )
    return shown
