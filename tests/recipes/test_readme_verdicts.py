"""The README's summary of a paper is its results page's verdict table, not a retelling: every
block of the README between `<!-- verdicts: PATH -->` and `<!-- /verdicts -->` holds exactly
the table rows of PATH's "## Verdicts" section. When a results page is regenerated, copy its
table into the README; this test names the block that drifted."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- verdicts: (\S+) -->\n(.*?)<!-- /verdicts -->", re.S)


def verdict_rows(page: str) -> list[str]:
    """The table lines (`| ... |`) of a results page's "## Verdicts" section."""
    section = page.split("\n## Verdicts\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_verdict_rows_reads_only_the_verdicts_section():
    page = "# t\n\n## Verdicts\n\n| a | b |\n|---|---|\n| x | y |\n\nnote\n\n## Table 1\n\n| z |\n"
    assert verdict_rows(page) == ["| a | b |", "|---|---|", "| x | y |"]


def test_the_readme_summaries_are_the_verdict_tables():
    readme = (REPO / "README.md").read_text()
    blocks = BLOCK.findall(readme)
    assert blocks, "README.md has no <!-- verdicts: PATH --> block"
    for path, body in blocks:
        want = verdict_rows((REPO / path).read_text())
        got = [line for line in body.splitlines() if line.startswith("|")]
        assert got == want, f"README.md's verdict block for {path} differs from its page: copy it"
