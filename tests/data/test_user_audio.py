"""A user's own audio: a folder with a transcript file, and a Kaldi data directory, prepared
with the checks and resampling of the bundled corpora; bad input names its file and line."""

import shutil

import pytest

from peerseq.cli import main
from peerseq.data.manifest import load_split, read_corpus_json, text_row
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.tokenizers import load_tokenizer
from peerseq.errors import DataError


def _wav(bundled, digit, idx, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundled / "fsdd" / "recordings" / f"{digit}_theo_{idx}.wav", dst)


@pytest.fixture
def folder(tmp_path, bundled):
    """Six 8 kHz recordings in a folder tree with a transcript that names its columns."""
    root = tmp_path / "mine"
    lines = ["id\ten\tde\tspeaker"]
    for i, (digit, en, de) in enumerate([(3, "three", "drei"), (4, "four", "vier")] * 3):
        _wav(bundled, digit, 10 + i, root / ("a" if i % 2 else "b") / f"utt{i}.wav")
        lines.append(f"utt{i}\t{en}\t{de}\ttheo")
    (root / "transcripts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_a_folder_with_a_transcript_prepares_with_translations(tmp_path, folder):
    meta = prepare(
        PrepareArgs(
            f"train={folder},dev={folder / 'transcripts.tsv'}", tmp_path / "o", vocab_size=30
        )
    )
    assert meta["languages"] == ["en", "de"] and meta["splits"] == ["train", "dev"]
    assert any("resampled to 16000" in n for n in meta["notes"])
    cuts = load_split(tmp_path / "o", "train").to_eager()
    assert len(cuts) == 6 and {c.sampling_rate for c in cuts} == {16000}
    row = text_row(cuts["utt1"])
    assert row["transcript"] == row["en"] == "four" and row["de"] == "vier"
    assert cuts["utt1"].supervisions[0].speaker == "theo"
    assert cuts["utt1"].load_audio().shape[1] == pytest.approx(cuts["utt1"].duration * 16000, abs=2)
    load_tokenizer(tmp_path / "o", "spm_en-de")  # the joint vocabulary, as for multi30k


def test_a_transcript_without_header_is_id_and_text(tmp_path, bundled):
    _wav(bundled, 3, 20, tmp_path / "x" / "one.wav")
    (tmp_path / "x" / "list.tsv").write_text("one\tthree\n")
    prepare(PrepareArgs(str(tmp_path / "x" / "list.tsv"), tmp_path / "o", split="test"))
    assert [text_row(c)["transcript"] for c in load_split(tmp_path / "o", "test")] == ["three"]


@pytest.mark.parametrize(
    "text, error",
    [
        ("id\ten\nutt9\tnine\n", "transcripts.tsv:2: no audio file for 'utt9'"),
        ("id\ten\tde\nutt0\tthree\n", "transcripts.tsv:2: 2 columns, expected 3"),
        ("id\ten\tcolour\nutt0\tthree\tred\n", "transcripts.tsv:1: column 'colour': expected"),
        ("utt0\tthree\tdrei\n", "transcripts.tsv:1: 3 columns without a header"),
        ("id\ten\nutt0\tthree\nutt0\tthree\n", "transcripts.tsv:3: id 'utt0' is given twice"),
    ],
)
def test_a_bad_transcript_names_its_line(tmp_path, folder, text, error):
    (folder / "transcripts.tsv").write_text(text)
    with pytest.raises(DataError, match=error):
        prepare(PrepareArgs(str(folder), tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_kaldi_data_dir_with_segments(tmp_path, bundled):
    kd = tmp_path / "kaldi"
    kd.mkdir()
    wavs, segs, text, spk = [], [], [], []
    for i in range(3):
        _wav(bundled, 5, 30 + i, tmp_path / "audio" / f"r{i}.wav")
        wavs.append(f"r{i} {tmp_path / 'audio' / f'r{i}.wav'}")
        segs.append(f"r{i}-seg r{i} 0.0 0.2")
        text.append(f"r{i}-seg five")
        spk.append(f"r{i}-seg theo")
    for name, lines in (("wav.scp", wavs), ("segments", segs), ("text", text), ("utt2spk", spk)):
        (kd / name).write_text("\n".join(lines) + "\n")
    prepare(PrepareArgs(str(kd), tmp_path / "o"))
    cuts = load_split(tmp_path / "o", "train").to_eager()
    assert sorted(cuts.ids) == ["r0-seg", "r1-seg", "r2-seg"]
    assert all(c.duration == pytest.approx(0.2) and c.sampling_rate == 16000 for c in cuts)
    assert read_corpus_json(tmp_path / "o")["kind"] == "speech"
    # a wav.scp command would run on this machine: refused, with the CLI's exit code 2
    (kd / "wav.scp").write_text("r0 sox r0.sph -t wav - |\n")
    assert main(["prepare", str(kd), "--out", str(tmp_path / "o2")]) == 2
    (kd / "wav.scp").write_text("\n".join(wavs) + "\n")
    (kd / "utt2spk").unlink()
    with pytest.raises(DataError, match="needs 'utt2spk'"):
        prepare(PrepareArgs(str(kd), tmp_path / "o3"))


def test_must_c_joins_transcript_and_translation_in_one_cut(tmp_path, bundled):
    """A MuST-C en-de layout in miniature: two talks of two segments in each set."""
    root = tmp_path / "MUSTC"
    for name in ("train", "dev", "tst-COMMON", "tst-HE"):
        base = root / "en-de" / "data" / name
        segs, en, de = [], [], []
        for talk in (1, 2):
            _wav(bundled, talk, 40 + talk, base / "wav" / f"ted_{name}{talk}.wav")
            for i in range(2):
                segs.append(
                    f"- {{duration: 0.1, offset: {0.1 * i}, speaker_id: spk.{talk}, "
                    f"wav: ted_{name}{talk}.wav}}"
                )
                en.append(f"talk {talk} part {i}")
                de.append(f"vortrag {talk} teil {i}")
        (base / "txt").mkdir(parents=True)
        (base / "txt" / f"{name}.yaml").write_text("\n".join(segs) + "\n")
        (base / "txt" / f"{name}.en").write_text("\n".join(en) + "\n")
        (base / "txt" / f"{name}.de").write_text("\n".join(de) + "\n")
    meta = prepare(PrepareArgs("must-c", tmp_path / "o", src=root, vocab_size=40))
    assert meta["splits"] == ["train", "dev", "test", "test-he"]
    assert meta["languages"] == ["en", "de"]
    rows = {c.id: text_row(c) for c in load_split(tmp_path / "o", "test")}
    assert rows["ted_tst-COMMON2-seg-1"]["transcript"] == "talk 2 part 1"
    assert rows["ted_tst-COMMON2-seg-1"]["de"] == "vortrag 2 teil 1"
    with pytest.raises(DataError, match="not a MuST-C en-fr release"):
        prepare(PrepareArgs("must-c", tmp_path / "o2", src=root, tgt="fr"))
    with pytest.raises(DataError, match="needs at least"):  # sentencepiece's own error, said
        prepare(PrepareArgs("must-c", tmp_path / "o3", src=root, vocab_size=8))
