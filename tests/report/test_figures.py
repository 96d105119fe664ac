"""The recipes' figures, read back as pixels: each says what was drawn, where it was drawn.

A file size says only that something was saved (an empty set of axes with a grid and labels
is already several kB); these checks find the drawn data in the image."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest

from peerseq.report.figures import curves, posteriorgrams, sweep


def rgb(path) -> np.ndarray:
    """The PNG at path as [H, W, 3] floats in [0, 1]."""
    return matplotlib.image.imread(str(path))[..., :3]


def near(img: np.ndarray, colour, tol: float = 0.08) -> np.ndarray:
    """[H, W] bool: pixels within tol of a matplotlib colour in every channel."""
    return (np.abs(img - np.array(matplotlib.colors.to_rgb(colour))) < tol).all(axis=-1)


def rise(mask: np.ndarray) -> float:
    """Pixels by which the marked pixels' median height in the right third of their columns
    exceeds that in the left third: positive for a rising line, negative for a falling one (a
    legend's short sample moves neither median)."""
    cols = np.nonzero(mask.any(axis=0))[0]
    third = len(cols) // 3
    rows = lambda cs: np.nonzero(mask[:, cs])[0]  # noqa: E731
    return float(np.median(rows(cols[:third])) - np.median(rows(cols[-third:])))


def test_curves_draw_each_series_where_its_values_are(tmp_path):
    xs = list(range(40))
    up = rgb(curves({"loss": (xs, [float(x) for x in xs])}, tmp_path / "up.png"))
    down = rgb(curves({"loss": (xs, [float(39 - x) for x in xs])}, tmp_path / "down.png"))
    empty = rgb(curves({"loss": ([], [])}, tmp_path / "empty.png"))  # the legend's sample only
    for img in (up, down):
        line = near(img, "C0")
        assert line.sum() > 5 * near(empty, "C0").sum()
        # the line crosses most of the figure's width, not only a legend sample
        assert line.any(axis=0).mean() > 0.5
    assert rise(near(up, "C0")) > 0.3 * up.shape[0]  # lower left to upper right
    assert rise(near(down, "C0")) < -0.3 * down.shape[0]


def test_posteriorgram_draws_label_0_at_the_top(tmp_path):
    labels = ["<b>", "a", "b", "c"]
    frames = 30

    def one_hot(label: int) -> np.ndarray:
        p = np.zeros((frames, len(labels)))
        p[:, label] = 1.0
        return p

    rows = {}
    for label in (0, 3):
        img = rgb(posteriorgrams([("m", one_hot(label))], labels, tmp_path / f"{label}.png"))
        hot = near(img, matplotlib.colormaps["viridis"](1.0)[:3])  # posterior 1
        band = hot.sum(axis=1) > 0.5 * img.shape[1]  # rows the heat map fills (not the colour bar)
        assert band.any(), f"no row of posterior 1 drawn for label {label}"
        rows[label] = np.nonzero(band)[0].mean()
    assert rows[0] < rows[3]  # row 0 (the blank) at the top
    with pytest.raises(ValueError, match=r"posteriors must be \[T, 4\]"):
        posteriorgrams([("m", np.zeros((frames, 3)))], labels, tmp_path / "bad.png")


def test_sweep_draws_the_scores_and_each_reference_line(tmp_path):
    img = rgb(sweep([("lambda", {0.1: [20.0], 0.5: [30.0], 0.9: [25.0]}, {"baseline": 22.0})],
                    tmp_path / "s.png"))  # fmt: skip
    scores, reference = near(img, "C0"), near(img, "C1")
    assert scores.any(axis=0).mean() > 0.5  # the score line across the panel
    # the reference is a horizontal dashed line: a band of 3 rows (its anti-aliased width)
    # holds most of its pixels, across the panel
    per_band = np.convolve(reference.sum(axis=1), np.ones(3), mode="same")
    assert per_band.max() > 0.3 * img.shape[1] and per_band.max() > 0.7 * reference.sum()


def test_sweep_draws_the_spread_of_the_seeds(tmp_path):
    """A point whose two seeds differ gets an error bar: a tall column of the line's colour
    that a point whose seeds agree does not have."""

    def tallest(points: dict, name: str) -> int:
        img = rgb(sweep([("alpha", points, {})], tmp_path / f"{name}.png"))
        return int(near(img, "C0").sum(axis=0).max())  # most line-coloured pixels in a column

    spread = tallest({0.0: [25.0], 1.0: [20.0, 30.0], 2.0: [25.0]}, "spread")
    agree = tallest({0.0: [24.0], 1.0: [25.0, 25.0], 2.0: [26.0]}, "agree")
    assert spread > 3 * agree, (spread, agree)
