"""Figures for the recipes' results pages (matplotlib, PNG, no display needed).

posteriorgrams  frame-wise label posteriors of CTC models side by side (paper 002 Fig. 3/5)
curves          training or dev curves from metrics.jsonl (paper 002 Fig. 4, 003 Fig. 3)
sweep           a score against one hyper-parameter per panel (paper 002 Fig. 6)
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a training machine
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from peerseq.files import temp_beside  # noqa: E402


def posteriorgrams(
    panels: list[tuple[str, np.ndarray]], labels: list[str], path: str | Path, title: str = ""
) -> Path:
    """panels: (title, posteriors [T, V]) per model, on the same utterance; labels: V names
    (labels[0] the CTC blank, drawn as row 0 at the top). One heat map per panel, stacked."""
    v = len(labels)
    for name, p in panels:
        if p.ndim != 2 or p.shape[1] != v:
            raise ValueError(f"{name}: posteriors must be [T, {v}], got {tuple(p.shape)}")
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 0.6 + 0.11 * v * len(panels)),
        squeeze=False,
        layout="constrained",
    )
    for ax, (name, p) in zip(axes[:, 0], panels, strict=True):
        im = ax.imshow(p.T, aspect="auto", origin="upper", cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_yticks(range(v), labels, fontsize=6)
        ax.set_title(name, fontsize=8, loc="left")
        ax.set_ylabel("label")
    axes[-1, 0].set_xlabel("frame (after subsampling)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), fraction=0.02, label="posterior")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def curves(
    series: dict[str, tuple[list[float], list[float]]],
    path: str | Path,
    xlabel: str = "update",
    ylabel: str = "loss",
    title: str = "",
    logy: bool = False,
) -> Path:
    """series: label -> (xs, ys), one line each; logy: a log-scale y axis."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if logy:
        ax.set_yscale("log")
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, label=label, marker="o" if len(xs) < 30 else None, markersize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def sweep(
    panels: list[tuple[str, dict[float, list[float]], dict[str, float]]],
    path: str | Path,
    ylabel: str = "BLEU",
) -> Path:
    """panels: (x label, {x: one score per seed}, {reference label: y} drawn as horizontal
    lines) per panel. Each seed's score is a dot; the mean over seeds is the line, with one
    sample standard deviation either side as an error bar where a point has two seeds or more."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (xlabel, points, refs) in zip(axes[0], panels, strict=True):
        xs = sorted(points)
        means = [float(np.mean(points[x])) for x in xs]
        sds = [float(np.std(points[x], ddof=1)) if len(points[x]) > 1 else 0.0 for x in xs]
        ax.errorbar(xs, means, yerr=sds, marker="o", capsize=4, color="C0",
                    label="EM-Network, mean ± sd")  # fmt: skip
        dots = [(x, y) for x in xs for y in points[x]]
        ax.scatter(*zip(*dots, strict=True), s=12, color="C0", alpha=0.45, label="one seed")
        for i, (label, y) in enumerate(refs.items()):
            ax.axhline(y, linestyle="--", color=f"C{i + 1}", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path, path.suffix)  # atomic: two lanes' reports may write it at once
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=path.suffix[1:], dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
