"""`make demo`: prepare every bundled corpus and print a table of them, then train smoke recipe
(b) -- ST and MT as peers with mutual learning, alternating updates and cyclical beta -- and
print both peers' dev BLEU next to what chance gets.
"""

from __future__ import annotations

from pathlib import Path

from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.stats import corpus_stats
from peerseq.report.tables import print_corpus_table

# multi30k-speech is synthesised: the demo makes the first 300 sentences of each split, which
# takes seconds; `peerseq prepare multi30k-speech --out DIR` makes all 29,000.
DEMO_CORPORA = {
    "fsdd": {},
    "fsdd-connected": {},
    "yesno": {},
    "librivox5": {},
    "multi30k": {},
    "multi30k-speech": {"limit": 300, "vocab_size": 1000},  # as recipes/smoke/st_mt_ml.yaml
}


SMOKE_B = Path(__file__).resolve().parents[1] / "recipes" / "smoke" / "st_mt_ml.yaml"


def run_demo(workdir: Path) -> list[dict]:
    stats = []
    for name, kw in DEMO_CORPORA.items():
        out = workdir / "data" / name
        prepare(PrepareArgs(name=name, out=out, **kw))
        stats.append(corpus_stats(out))
    print_corpus_table(stats)
    train_smoke_b(workdir)
    return stats


def train_smoke_b(workdir: Path) -> dict[str, float]:
    """Train recipe (b) on the demo's multi30k-speech and print dev BLEU of st and mt."""
    from rich.console import Console
    from rich.table import Table

    from peerseq.config import load_config
    from peerseq.data.manifest import load_text_split
    from peerseq.evaluate import chance_score
    from peerseq.experiment import Experiment
    from peerseq.train import train

    corpus = workdir / "data" / "multi30k-speech"  # prepared above with the recipe's args
    exp = load_config(
        Experiment, SMOKE_B, [f"out_dir={workdir / 'smoke_b'}", f"data.corpus={corpus}"]
    )
    state = train(exp)
    last = [h for h in _dev_records(Path(exp.out_dir)) if "st/bleu" in h][-1]
    refs = [r["de"] for r in load_text_split(corpus, "dev")][: exp.data.limit_dev]
    chance = chance_score(refs, [r["de"] for r in load_text_split(corpus, "train")], "bleu")
    table = Table(title=f"smoke (b): ST <-> MT mutual learning, dev BLEU after {state.step} steps")
    for col in ("peer", "reads", "dev BLEU", "chance BLEU"):
        table.add_column(col)
    for peer in ("st", "mt"):
        table.add_row(peer, exp.peers[peer].reads, f"{last[f'{peer}/bleu']:.2f}", f"{chance:.2f}")
    Console().print(table)
    Console().print(
        "A tiny model after about a minute of CPU training: it has learnt German n-grams, not yet "
        "to translate (chance = random training sentences). Comparing methods needs longer runs.",
        highlight=False,
    )
    return {p: last[f"{p}/bleu"] for p in ("st", "mt")}


def _dev_records(run: Path) -> list[dict]:
    import json

    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == "dev"]
