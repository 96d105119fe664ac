"""prepare never deletes what it did not write, and a user's manifest gets the checks the bundled
corpora get (rate, channels, length, readable local audio only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import AudioSource, CutSet, MonoCut, Recording, SupervisionSegment

from peerseq.cli import main
from peerseq.data.features import precomputed
from peerseq.data.manifest import load_split, load_text_split
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.errors import DataError

M30K = ["prepare", "multi30k", "--limit", "20", "--vocab-size", "60"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_prepare_never_deletes_what_it_did_not_write(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main([*M30K, "--out", str(a_file)]) == 2
    assert "exists and is not a directory" in one_error_line(capsys)
    assert a_file.read_text() == "mine"

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep")
    for force in ([], ["--force"]):
        assert main([*M30K, "--out", str(folder), *force]) == 2
        assert f"--out {folder}: exists, is not empty and is not a peerseq corpus" in (
            one_error_line(capsys)
        )
        assert sorted(p.name for p in folder.iterdir()) == ["precious.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial left

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*M30K, "--out", str(empty)]) == 0
    assert (empty / "corpus.json").is_file()


def test_replacing_an_earlier_corpus_needs_force(tmp_path, capsys):
    out = tmp_path / "c"
    assert main([*M30K, "--out", str(out)]) == 0
    assert main([*M30K, "--out", str(out)]) == 0  # the same settings: reused
    assert "already prepared" in capsys.readouterr().out
    other = ["prepare", "multi30k", "--limit", "30", "--vocab-size", "60", "--out", str(out)]
    assert main(other) == 2
    line = one_error_line(capsys)
    assert "prepared with other settings (differs in: limit)" in line and "--force" in line
    assert len(load_text_split(out, "train")) == 20  # untouched
    precomputed_like = out / "features_fbank80"  # what training writes there is ours too
    precomputed_like.mkdir()
    assert main([*other, "--force"]) == 0
    assert len(load_text_split(out, "train")) == 30
    (out / "my-notes.txt").write_text("mine")
    assert main([*M30K, "--out", str(out), "--force"]) == 2
    assert "holds files peerseq did not write (my-notes.txt)" in one_error_line(capsys)
    assert (out / "my-notes.txt").read_text() == "mine"


def test_out_under_a_file_or_on_a_read_only_file_system(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main([*M30K, "--out", str(tmp_path / "f" / "c")]) == 2
    assert "is a file, not a directory" in one_error_line(capsys)
    assert main([*M30K, "--out", "/proc/peerseq/c"]) == 2  # not writable, even for root
    assert "cannot write there" in one_error_line(capsys)


# ---------------------------------------------------------------- user manifests


def recordings(fsdd: Path, n: int = 6) -> list[Recording]:
    """FSDD's own 8 kHz files, as they are: a user's manifest at another rate."""
    files = sorted((fsdd / "recordings").glob("*.wav"))[:n]
    return [Recording.from_file(f) for f in files]


def manifest(tmp_path: Path, recs: list[Recording], name: str = "user.jsonl.gz", **cut_kw) -> Path:
    cuts = [
        MonoCut(
            id=r.id,
            start=0,
            duration=r.duration,
            channel=cut_kw.get("channel", 0),
            recording=r,
            supervisions=[
                SupervisionSegment(
                    id=r.id, recording_id=r.id, start=0, duration=r.duration, text="ZERO"
                )
            ],
        )
        for r in recs
    ]
    path = tmp_path / name
    CutSet.from_cuts(cuts).to_file(path)
    return path


def test_a_user_manifest_at_8_khz_is_resampled_and_trains(tmp_path, fsdd_copy, capsys):
    path = manifest(tmp_path, recordings(fsdd_copy))
    assert main(["prepare", str(path), "--out", str(tmp_path / "u")]) == 0
    assert "audio at [8000] Hz resampled to 16000 Hz" in capsys.readouterr().out
    assert {c.sampling_rate for c in load_split(tmp_path / "u", "train")} == {16000}
    feats = precomputed(tmp_path / "u", "train", "fbank80")  # what training died on before
    assert next(iter(feats)).load_features().shape[1] == 80


def test_non_local_audio_sources_are_refused_unless_allowed(tmp_path, fsdd_copy, capsys):
    marker = tmp_path / "ran"
    rec = recordings(fsdd_copy, 1)[0]
    wav = rec.sources[0].source
    evil = Recording(
        id="evil",
        sources=[AudioSource(type="command", channels=[0], source=f"touch {marker}; cat {wav}")],
        sampling_rate=rec.sampling_rate,
        num_samples=rec.num_samples,
        duration=rec.duration,
    )
    path = manifest(tmp_path, [evil])
    assert main(["prepare", str(path), "--out", str(tmp_path / "u")]) == 2
    line = one_error_line(capsys)
    assert "cut evil: recording evil: audio source of type 'command' refused" in line
    assert "--allow-nonlocal-audio" in line
    assert not marker.exists() and not (tmp_path / "u").exists()
    url = Recording(
        id="far",
        sources=[AudioSource(type="url", channels=[0], source="http://example.invalid/a.wav")],
        sampling_rate=8000,
        num_samples=8000,
        duration=1.0,
    )
    far = manifest(tmp_path, [url], "far.jsonl.gz")
    assert main(["prepare", str(far), "--out", str(tmp_path / "v")]) == 2
    assert "audio source of type 'url' refused" in one_error_line(capsys)
    # trusted explicitly: the command source is read (and so it runs)
    allowed = ["prepare", str(path), "--out", str(tmp_path / "w"), "--allow-nonlocal-audio"]
    assert main(allowed) == 0 and marker.exists()


def test_a_user_manifest_is_checked_like_a_bundled_corpus(tmp_path, fsdd_copy, capsys):
    rec = recordings(fsdd_copy, 1)[0]
    lying = Recording(
        id="lying",
        sources=rec.sources,
        sampling_rate=16000,  # the file is 8 kHz
        num_samples=rec.num_samples * 2,
        duration=rec.duration,
    )
    path = manifest(tmp_path, [lying])
    assert main(["prepare", str(path), "--out", str(tmp_path / "a")]) == 2
    assert "recording lying: sampling_rate 16000 in the manifest, 8000 Hz in" in (
        one_error_line(capsys)
    )

    stereo_file = tmp_path / "stereo.wav"
    samples, rate = sf.read(rec.sources[0].source)
    sf.write(stereo_file, [[s, s] for s in samples], rate)
    stereo = Recording.from_file(stereo_file)
    path = manifest(tmp_path, [stereo], "stereo.jsonl.gz", channel=[0, 1])
    assert main(["prepare", str(path), "--out", str(tmp_path / "b")]) == 2
    assert "cut stereo: 2 channels, expected one" in one_error_line(capsys)

    truncated = tmp_path / "cut-short.wav"
    shutil.copy(rec.sources[0].source, truncated)
    with open(truncated, "r+b") as f:
        f.truncate(truncated.stat().st_size // 2)
    short = Recording(
        id="short",
        sources=[AudioSource("file", [0], str(truncated))],
        sampling_rate=rec.sampling_rate,
        num_samples=rec.num_samples,
        duration=rec.duration,
    )
    with pytest.raises(DataError, match="cut short: .*truncated WAV file"):
        prepare(PrepareArgs(str(manifest(tmp_path, [short], "s.jsonl.gz")), tmp_path / "c"))


def test_a_byte_order_mark_is_not_text(tmp_path, bundled):
    src = tmp_path / "m30k"
    shutil.copytree(bundled / "multi30k", src)
    first = (src / "train.en").read_text(encoding="utf-8").splitlines()[0]
    (src / "train.en").write_bytes(b"\xef\xbb\xbf" + (src / "train.en").read_bytes())
    meta = prepare(PrepareArgs("multi30k", tmp_path / "m", src=src, limit=20, vocab_size=60))
    assert load_text_split(tmp_path / "m", "train")[0]["en"] == first
    assert any("train.en: UTF-8 byte-order mark at the start removed" in n for n in meta["notes"])


def test_what_appears_at_out_meanwhile_is_left_alone(tmp_path):
    from peerseq.files import DirectoryTaken, atomic_dir

    final = tmp_path / "c"
    with pytest.raises(DirectoryTaken, match="something was written there"):
        with atomic_dir(final, replace=False) as tmp:
            (tmp / "corpus.json").write_text("{}")
            final.mkdir()
            (final / "theirs.txt").write_text("keep")  # another process, meanwhile
    assert [p.name for p in final.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # our work removed
