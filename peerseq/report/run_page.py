"""`peerseq report RUN` (and the end of `peerseq train`): RUN/report.html, one self-contained
page a person would rather look at than metrics.jsonl.

Every training term per peer and the links' weights (beta's cycle, alpha) against updates, each
peer's learning rate, the dev metrics and losses, the throughput and where the wall time went
(training against validating), a posteriorgram of one dev utterance for each CTC peer, and the
config. Plots are inline SVG (matplotlib): the page is one file, opened by any browser offline.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from peerseq.files import atomic_write_text  # noqa: E402
from peerseq.report.summary import environments, training_minutes  # noqa: E402
from peerseq.rundir.layout import RunDir  # noqa: E402
from peerseq.rundir.log import read_metrics  # noqa: E402

_META = {"split", "step", "epoch", "time"}
_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}.note{color:#666}"""


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML prologue


def _plot(series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str, log=False):
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for name, points in sorted(series.items()):
        pts = [(x, y) for x, y in points if isinstance(y, int | float) and math.isfinite(y)]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=name, marker="." if len(pts) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _svg(fig)


def _series(records: list[dict], keep) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for k, v in r.items():
            if k not in _META and keep(k) and isinstance(v, int | float):
                out.setdefault(k, []).append((r["step"], float(v)))
    return out


def _is_weight(k: str) -> bool:
    return "/" not in k and "(" not in k and k != "total" and not k.startswith("lr:")


def _time_table(records: list[dict], train: list[dict], dev: list[dict]) -> str:
    wall = 60 * training_minutes(records)
    valid = sum(r.get("valid_seconds", 0.0) for r in dev)
    steps = train[-1]["step"] - train[0]["step"] if len(train) > 1 else 0
    rows = [
        ("updates logged", f"{train[-1]['step'] if train else 0}"),
        ("trained on", "; ".join(environments(records)) or "-"),
        ("wall time training (each stretch's first to last record)", f"{wall / 60:.1f} min"),
        ("validating", f"{valid / 60:.1f} min ({valid / wall:.0%} of it)" if wall else "-"),
        ("updates a minute", f"{steps / (wall - valid) * 60:.1f}" if wall > valid else "-"),
    ]
    return "<table>" + "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows) + "</table>"


def _posteriorgrams(run_dir: Path) -> str:
    """Frame posteriors of each CTC peer on the first dev utterance, or why there are none."""
    try:
        import numpy as np

        from peerseq.engine.peer import is_seq2seq
        from peerseq.runs import load_run
        from peerseq.search.ctc import ctc_greedy

        run = load_run(run_dir, "last", device="cpu")
        batch = next(iter(run.data.batches(run.exp.data.dev_split)))
        parts = []
        for name, peer in run.peers.items():
            if peer.reads != "speech" or peer.upstream or is_seq2seq(peer.model):
                continue
            out = peer.forward(batch)
            n = int(out.lengths[0])
            post = out.log_probs[0, :n].exp().detach().numpy()
            tok = run.data.tokenizers[peer.predicts]
            text = tok.decode(ctc_greedy(out.log_probs[:1, :n], out.lengths[:1])[0])
            fig, ax = plt.subplots(figsize=(9, 3))
            ax.imshow(np.asarray(post).T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_xlabel("output frame")
            ax.set_ylabel("label id (0: blank)")
            ax.set_title(f'{name} on {batch.ids[0]}: "{text}"', fontsize=9, loc="left")
            parts.append(_svg(fig))
        return "".join(parts) or '<p class="note">No CTC peer reads speech in this run.</p>'
    except Exception as e:  # the page still says everything else: a missing corpus, no weights
        return f'<p class="note">No posteriorgram: {html.escape(str(e))}</p>'


def run_report(run_dir: str | Path) -> Path:
    """Write RUN/report.html from RUN/metrics.jsonl, RUN/config.yaml and the run's weights."""
    run_dir = Path(run_dir)
    layout = RunDir(run_dir)
    records = read_metrics(layout.metrics) if layout.metrics.is_file() else []
    train = [r for r in records if r["split"] == "train"]
    dev = [r for r in records if r["split"] == "dev"]
    body = [f"<h1>Run {html.escape(str(run_dir))}</h1>"]
    if not train:
        body.append('<p class="note">No training record yet (metrics.jsonl).</p>')
    else:
        losses = _series(train, lambda k: not _is_weight(k) and not k.startswith("lr:"))
        body += ["<h2>Training terms</h2>", _plot(losses, "update", "loss")]
        weights = _series(train, _is_weight)
        if weights:
            body += ["<h2>Link weights and schedules</h2>", _plot(weights, "update", "weight")]
        rates = _series(train, lambda k: k.startswith("lr:"))
        if rates:
            body += ["<h2>Learning rates</h2>", _plot(rates, "update", "lr", log=True)]
    if dev:
        metrics = _series(dev, lambda k: "/" in k and not k.endswith(("ctc", "nll")))
        dev_losses = _series(dev, lambda k: k.endswith(("ctc", "nll")) or k == "total")
        body += ["<h2>Dev</h2>", _plot(metrics, "update", "dev metric") if metrics else ""]
        body += [_plot(dev_losses, "update", "dev loss") if dev_losses else ""]
    body += ["<h2>Time</h2>", _time_table(records, train, dev)]
    body += ["<h2>Posteriorgrams (CTC peers, first dev utterance, last weights)</h2>"]
    body += [_posteriorgrams(run_dir)]
    config = layout.config.read_text() if layout.config.is_file() else "(no config.yaml)"
    body += ["<h2>Config</h2>", f"<pre>{html.escape(config)}</pre>"]
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(run_dir.name)}"
        f"</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
    path = run_dir / "report.html"
    atomic_write_text(path, page)
    return path
