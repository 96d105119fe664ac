"""A README's summary of a paper is its results page's verdict table, not a retelling.

A README marks each summary with `<!-- verdicts: PAGE -->` ... `<!-- /verdicts -->`, PAGE a
results page relative to the README. `peerseq report --readme README.md` rewrites the blocks
that name the page it has just written, so the summary cannot drift from the measurements;
tests/recipes/test_readme_verdicts.py checks every block against its page."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from peerseq.errors import PeerseqError
from peerseq.files import atomic_write_text

BLOCK = re.compile(r"(<!-- verdicts: (\S+) -->\n)(.*?)(<!-- /verdicts -->)", re.S)


# a verdict section: "## Verdicts" on a one-table page, "### Verdicts ..." inside each group of
# a page with several (paper 002: ASR and MT), or "## Verdicts, PAIR" as a group's own section
# (paper 000); the sections' rows are copied as one table
VERDICTS = re.compile(r"^(#{2,3}) Verdicts\b.*$", re.M)


def verdict_rows(page: str) -> list[str]:
    """The table lines (`| ... |`) of a results page's verdict sections, one table: the first
    section's header and rows, then the rows of the others ([] without any). A section's table
    is its first one: a table after it, under no heading of its own (paper 002's systems table
    follows the verdicts' note), is not a verdict."""
    rows: list[str] = []
    for m in VERDICTS.finditer(page):
        section = page[m.end() :]
        end = re.search(rf"^#{{1,{len(m.group(1))}}} ", section, re.M)  # the next heading as high
        lines = section[: end.start() if end else None].splitlines()
        first = next((i for i, ln in enumerate(lines) if ln.startswith("|")), len(lines))
        table = list(itertools.takewhile(lambda ln: ln.startswith("|"), lines[first:]))
        rows += table[2:] if rows else table
    return rows


def blocks(readme: str) -> list[tuple[str, list[str]]]:
    """(page path as written, its table lines) for each verdict block of a README."""
    return [
        (m.group(2), [ln for ln in m.group(3).splitlines() if ln.startswith("|")])
        for m in BLOCK.finditer(readme)
    ]


def sync_verdicts(readme: Path, page: Path) -> int:
    """Replace the table of every block of README that names PAGE by PAGE's verdict rows.

    Text around the table inside a block is kept (a sentence before or after it). Returns the
    number of blocks rewritten; an error names the README when none names PAGE or the page has
    no "## Verdicts" table."""
    readme, page = Path(readme), Path(page)
    if not readme.is_file():
        raise PeerseqError(f"--readme {readme}: no such file")
    rows = verdict_rows(page.read_text())
    if not rows:
        raise PeerseqError(f"{page}: no '## Verdicts' table to copy into {readme}")
    here = readme.resolve().parent
    target = page.resolve()
    text = readme.read_text()
    count = 0

    def fill(m: re.Match) -> str:
        nonlocal count
        if (here / m.group(2)).resolve() != target:
            return m.group(0)
        count += 1
        lines = m.group(3).splitlines()
        table = [i for i, ln in enumerate(lines) if ln.startswith("|")]
        start, end = (table[0], table[-1] + 1) if table else (len(lines), len(lines))
        body = lines[:start] + rows + lines[end:]
        return m.group(1) + "".join(ln + "\n" for ln in body) + m.group(4)

    new = BLOCK.sub(fill, text)
    if not count:
        rel = os.path.relpath(target, here)
        raise PeerseqError(
            f"{readme}: no '<!-- verdicts: {rel} -->' block; add one where the summary goes, "
            "closed by '<!-- /verdicts -->'"
        )
    if new != text:
        atomic_write_text(readme, new)
    return count
