import pytest

from peerseq.data.text import read_lines, read_parallel
from peerseq.errors import DataError


def test_parallel_reads_aligned_rows(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    rows = read_parallel({"en": tmp_path / "a.en", "de": tmp_path / "a.de"})
    assert rows == [{"en": "one", "de": "eins"}, {"en": "two", "de": "zwei"}]


def test_line_count_mismatch_names_both_files(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    with pytest.raises(DataError) as e:
        read_parallel({"en": tmp_path / "a.en", "de": tmp_path / "a.de"})
    msg = str(e.value)
    assert "a.en has 3" in msg and "a.de has 2" in msg


def test_non_utf8_names_the_line(tmp_path):
    (tmp_path / "x.de").write_bytes("gut\nsch\u00f6n\n".encode() + b"M\xfcller\n")
    with pytest.raises(DataError, match=r"x\.de:3: not valid UTF-8"):
        read_lines(tmp_path / "x.de")


def test_empty_sentence_names_the_line(tmp_path):
    (tmp_path / "a.en").write_text("one\n\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\ndrei\n")
    with pytest.raises(DataError, match=r"a\.en:2: empty sentence"):
        read_parallel({"en": tmp_path / "a.en", "de": tmp_path / "a.de"})
