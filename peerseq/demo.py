"""`make demo`: prepare every bundled corpus and print a table of them.

Later stages extend this to train and compare methods on the prepared data.
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
    "multi30k-speech": {"limit": 300},
}


def run_demo(workdir: Path) -> list[dict]:
    stats = []
    for name, kw in DEMO_CORPORA.items():
        out = workdir / "data" / name
        prepare(PrepareArgs(name=name, out=out, **kw))
        stats.append(corpus_stats(out))
    print_corpus_table(stats)
    return stats
