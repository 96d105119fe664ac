"""Reading plain-text corpora (one sentence a line) with clear errors."""

from __future__ import annotations

from pathlib import Path

from peerseq.errors import DataError

BOM = "\ufeff"


def read_lines(path: str | Path, notes: list[str] | None = None) -> list[str]:
    """All lines of a UTF-8 text file, without their newlines.

    A UTF-8 byte-order mark (Windows editors write one) is not text: it is removed from the
    start of the file, with a line in `notes` saying so. Raises DataError naming the file and the
    line for a missing file or invalid UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: text file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte {data[e.start]:#04x})") from None
    if text.startswith(BOM):
        text = text[len(BOM) :]
        if notes is not None:
            notes.append(f"{path}: UTF-8 byte-order mark at the start removed")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rstrip("\r") for ln in lines]


def read_parallel(
    paths: dict[str, Path], allow_empty: bool = False, notes: list[str] | None = None
) -> list[dict[str, str]]:
    """Aligned lines of several files, e.g. {"en": train.en, "de": train.de} -> [{"en":..,"de":..}].

    Raises DataError when the files differ in line count or a line is empty (naming the file and
    line), unless allow_empty.
    """
    columns = {lang: read_lines(p, notes) for lang, p in paths.items()}
    counts = {lang: len(lines) for lang, lines in columns.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{paths[lang]} has {n}" for lang, n in counts.items())
        raise DataError(f"parallel text files differ in line count: {detail}")
    rows = []
    for i, values in enumerate(zip(*columns.values(), strict=True)):
        row = dict(zip(columns, values, strict=True))
        if not allow_empty:
            for lang, s in row.items():
                if not s.strip():
                    raise DataError(f"{paths[lang]}:{i + 1}: empty sentence")
        rows.append(row)
    return rows
