"""Tables printed for people (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_corpus_table(rows: list[dict], console: Console | None = None) -> None:
    """One row per corpus from peerseq.data.stats.corpus_stats."""
    t = Table(title="peerseq corpora")
    for col in ("corpus", "train", "dev", "test", "hours", "speakers", "words", "vocabularies"):
        t.add_column(
            col,
            justify="left" if col in ("corpus", "vocabularies") else "right",
            no_wrap=col != "vocabularies",
        )
    for r in rows:
        u = r["utterances"]
        t.add_row(
            r["name"],
            *(str(u[s]) if s in u else "-" for s in ("train", "dev", "test")),
            f"{r['hours']:.2f}" if r["hours"] is not None else "-",
            str(r["speakers"]) if r["speakers"] is not None else "-",
            str(r["words"]),
            _vocab(r["vocab"]),
        )
    (console or Console(width=max(Console().width, 130))).print(t)


def _vocab(sizes: dict[str, int]) -> str:
    """{'chars': 29, 'spm_en': 7931, 'spm_en-de': 8000} -> 'chars 29 | spm en 7931, en-de 8000'."""
    chars = [f"chars {v}" for k, v in sizes.items() if k == "chars"]
    spm = [f"{k[4:]} {v}" for k, v in sizes.items() if k.startswith("spm_")]
    return " | ".join(chars + ([f"spm {', '.join(spm)}"] if spm else []))


def print_scores(scores: dict[str, dict], title: str, console: Console | None = None) -> None:
    """One row per peer: metric, score, utterances, and the metric's signature."""
    t = Table(title=title)
    for col in ("peer", "metric", "score", "n", "signature"):
        t.add_column(col, justify="right" if col in ("score", "n") else "left")
    for peer, s in scores.items():
        t.add_row(peer, s["metric"], f"{s['score']:.2f}", str(s["n"]), s["signature"])
    (console or Console(width=max(Console().width, 130))).print(t)
