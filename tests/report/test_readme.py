"""peerseq.report.readme: the README's verdict blocks are rewritten from the page, nothing else."""

from __future__ import annotations

import pytest

from peerseq.cli import main
from peerseq.errors import PeerseqError
from peerseq.report.readme import blocks, sync_verdicts, verdict_rows

PAGE = (
    "# R\n\n## Verdicts\n\n| claim | verdict |\n|---|---|\n| x | reproduced |\n\nnote\n\n"
    "## T\n\n| z |\n"
)
README = (
    "# Tool\n\nBefore.\n\n<!-- verdicts: recipes/r/results.md -->\nIts verdicts:\n\n"
    "| claim | verdict |\n|---|---|\n| x | not reproduced |\n\nAfter the table.\n"
    "<!-- /verdicts -->\n\n<!-- verdicts: recipes/other/results.md -->\n| o |\n<!-- /verdicts -->\n"
)


def _files(tmp_path, readme=README):
    (tmp_path / "recipes/r").mkdir(parents=True)
    (tmp_path / "recipes/r/results.md").write_text(PAGE)
    (tmp_path / "README.md").write_text(readme)
    return tmp_path / "README.md", tmp_path / "recipes/r/results.md"


def test_verdict_rows_reads_only_the_verdicts_section():
    assert verdict_rows(PAGE) == ["| claim | verdict |", "|---|---|", "| x | reproduced |"]
    assert verdict_rows("# no verdicts\n") == []


def test_verdict_rows_joins_the_verdict_sections_of_several_groups():
    page = (
        "# R\n\n## ASR\n\n### Verdicts\n\n| claim | verdict |\n|---|---|\n| a | reproduced |\n\n"
        "### Table 5\n\n| t |\n\n## MT\n\n### Verdicts\n\n| claim | verdict |\n|---|---|\n"
        "| m | inconclusive |\n\n### Figure 6\n\n| f |\n"
    )
    assert verdict_rows(page) == [
        "| claim | verdict |", "|---|---|", "| a | reproduced |", "| m | inconclusive |"
    ]  # fmt: skip


def test_verdict_rows_stop_at_the_end_of_the_verdict_table():
    """Paper 002's page: under "### Verdicts (ASR)" the verdicts, their note, then the systems
    table with no heading of its own; only the verdicts are copied."""
    page = (
        "## ASR\n\n### Verdicts (ASR)\n\n| claim | verdict |\n|---|---|\n| a | reproduced |\n\n"
        "Gain: ...\n\n| system | test WER |\n|---|---|\n| plain | 12.7 |\n\n### Table 4\n"
    )
    assert verdict_rows(page) == ["| claim | verdict |", "|---|---|", "| a | reproduced |"]


def test_sync_rewrites_only_the_block_naming_the_page(tmp_path):
    readme, page = _files(tmp_path)
    assert sync_verdicts(readme, page) == 1
    text = readme.read_text()
    assert blocks(text) == [
        ("recipes/r/results.md", verdict_rows(PAGE)),
        ("recipes/other/results.md", ["| o |"]),
    ]
    # the sentences around the table inside the block and everything outside it are kept
    assert (
        "Its verdicts:\n\n| claim" in text
        and "| x | reproduced |\n\nAfter the table.\n<!--" in text
    )
    assert text.startswith("# Tool\n\nBefore.\n\n") and "not reproduced" not in text
    assert sync_verdicts(readme, page) == 1 and readme.read_text() == text  # idempotent


def test_sync_fills_an_empty_block(tmp_path):
    readme, page = _files(tmp_path, "<!-- verdicts: recipes/r/results.md -->\n<!-- /verdicts -->\n")
    sync_verdicts(readme, page)
    assert blocks(readme.read_text()) == [("recipes/r/results.md", verdict_rows(PAGE))]


def test_sync_names_the_missing_block_or_table(tmp_path):
    readme, page = _files(tmp_path, "# Tool\n")
    with pytest.raises(
        PeerseqError, match=r"README.md: no '<!-- verdicts: recipes/r/results.md -->'"
    ):
        sync_verdicts(readme, page)
    page.write_text("# R\n")
    with pytest.raises(PeerseqError, match="no '## Verdicts' table"):
        sync_verdicts(readme, page)


def test_cli_report_readme_missing_file_exits_2(tmp_path, capsys):
    out, readme = tmp_path / "out", str(tmp_path / "NOPE.md")
    code = main(
        ["reproduce", "recipes/mlkd", "--scale", "tiny", "--readme", readme, "--out", str(out)]
    )
    assert code == 2
    assert "NOPE.md: no such file" in capsys.readouterr().err
    assert not out.exists()  # refused before any training
