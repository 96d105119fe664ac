"""A recipe's committed results are what its committed logs give: `peerseq report` on
recipes/NAME/logs/small (each run's config, metrics.jsonl, decoded test set and what was
computed from its weights, as `peerseq reproduce` keeps them) writes recipes/NAME/results.md and
results.json again, byte for byte and value for value, and `--readme` copies its verdict table
into a README. Paper 003's CPU decoding RTF needs weights, which the logs do not hold: it is "—"
in both. Figures are written but not compared (their bytes depend on matplotlib's version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerseq.cli import main
from peerseq.report.readme import blocks, verdict_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, group, settings",
    [("mlkd", "fsdd-connected", ["--set", "corpus=fsdd-connected"]), ("em_network", "mt", [])],
)
def test_results_are_regenerated_from_the_committed_logs(
    name, group, settings, tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)  # the page names its logs folder relative to the repository
    recipe = Path("recipes") / name
    logs = recipe / "logs" / "small"
    assert (logs / group).is_dir()
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- verdicts: results.md -->\n| old |\n<!-- /verdicts -->\n")
    argv = ["report", str(recipe), "--root", str(logs), "--scale", "small", "--results"]
    argv += [str(tmp_path / "results"), *settings, "--readme", str(readme)]
    assert main(argv) == 0
    assert (tmp_path / "results.md").read_text() == (recipe / "results.md").read_text()
    got = json.loads((tmp_path / "results.json").read_text())
    assert got == json.loads((recipe / "results.json").read_text())
    assert got["claims"] and all(c["verdict"] for c in got["claims"])
    # --readme: the README's block for the page is now the page's verdict table
    rows = verdict_rows((tmp_path / "results.md").read_text())
    assert len(rows) > 2 and blocks(readme.read_text()) == [("results.md", rows)]
