"""The README's summary of a paper is its results page's verdict table, not a retelling: every
block of the README between `<!-- verdicts: PATH -->` and `<!-- /verdicts -->` holds exactly
the table rows of PATH's "## Verdicts" section. When a results page is regenerated, copy its
table into the README (`peerseq report ... --readme README.md` does it); this test names the block
that drifted."""

from __future__ import annotations

from pathlib import Path

from peerseq.report.readme import blocks, verdict_rows

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_summaries_are_the_verdict_tables():
    readme = (REPO / "README.md").read_text()
    found = blocks(readme)
    assert found, "README.md has no <!-- verdicts: PATH --> block"
    for path, got in found:
        want = verdict_rows((REPO / path).read_text())
        assert want, f"{path} has no '## Verdicts' table"
        assert got == want, (
            f"README.md's verdict block for {path} differs from its page: "
            "run peerseq report ... --readme README.md"
        )
