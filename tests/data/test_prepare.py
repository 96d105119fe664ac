"""Each bundled corpus prepares at tiny size; bad input fails clearly and leaves nothing behind."""

import gzip
import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from peerseq.data.manifest import cut_text, load_split, load_text_split, text_row
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.synth import held_out_pools
from peerseq.data.tokenizers import load_tokenizer
from peerseq.errors import DataError


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_fsdd_splits_follow_upstream_rule(tmp_path):
    prepare(PrepareArgs("fsdd", tmp_path / "f"))
    split_of = {s: {c.id for c in load_split(tmp_path / "f", s)} for s in ("train", "dev", "test")}
    assert [len(split_of[s]) for s in ("train", "dev", "test")] == [2000, 250, 250]
    assert all(int(i.split("_")[2]) < 5 for i in split_of["test"])
    assert all(5 <= int(i.split("_")[2]) < 10 for i in split_of["dev"])
    cut = next(iter(load_split(tmp_path / "f", "test")))
    assert cut.sampling_rate == 16000 and cut.supervisions[0].speaker in cut.id
    assert (
        cut_text(cut)
        == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][
            int(cut.id[0])
        ]
    )


def test_fsdd_holds_out_speakers_for_test_and_dev(tmp_path, fsdd_copy):
    meta = prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy, test_speakers=["theo"]))
    speakers = {
        s: {c.supervisions[0].speaker for c in load_split(tmp_path / "f", s)}
        for s in ("train", "dev", "test")
    }
    assert speakers["test"] == {"theo"}
    assert "theo" not in speakers["train"] | speakers["dev"]
    assert speakers["dev"] == speakers["train"] == {"george", "jackson", "nicolas", "yweweler"}
    assert meta["speakers"]["test"] == ["theo"]
    test = {c.id for c in load_split(tmp_path / "f", "test")}
    assert len(test) == 8  # every recording of theo in the copy, indices 0-11
    dev = {c.id for c in load_split(tmp_path / "f", "dev")}
    assert all(int(i.split("_")[2]) < 10 for i in dev)  # the others' index 0-9: seen-speaker dev
    both = prepare(
        PrepareArgs(
            "fsdd-connected",
            tmp_path / "c",
            src=fsdd_copy,
            sizes={"train": 20, "dev": 5, "test": 5},
            test_speakers=["theo"],
            dev_speakers=["george", "jackson"],
        )
    )
    assert both["speakers"] == {
        "train": ["nicolas", "yweweler"],
        "dev": ["george", "jackson"],
        "test": ["theo"],
    }
    with pytest.raises(DataError, match="no recordings of bob; the speakers are george"):
        prepare(PrepareArgs("fsdd", tmp_path / "x", src=fsdd_copy, test_speakers=["bob"]))
    with pytest.raises(DataError, match="theo: in both"):
        prepare(
            PrepareArgs(
                "fsdd", tmp_path / "x", src=fsdd_copy, test_speakers=["theo"], dev_speakers=["theo"]
            )
        )
    with pytest.raises(DataError, match="--test-speakers: only fsdd, fsdd-connected and multi30k"):
        prepare(PrepareArgs("yesno", tmp_path / "x", test_speakers=["theo"]))


def test_fsdd_connected_keeps_the_split_and_is_seeded(tmp_path, fsdd_copy):
    sizes = {"train": 30, "dev": 10, "test": 10}
    a = prepare(PrepareArgs("fsdd-connected", tmp_path / "c1", src=fsdd_copy, sizes=sizes))
    prepare(PrepareArgs("fsdd-connected", tmp_path / "c2", src=fsdd_copy, sizes=sizes))
    assert a["args"]["sizes"] == sizes
    for split in sizes:
        one = tmp_path / "c1" / f"cuts_{split}.jsonl.gz"
        two = tmp_path / "c2" / f"cuts_{split}.jsonl.gz"
        # the same manifest (gzip's header differs only in its timestamp)
        assert gzip.decompress(one.read_bytes()) == gzip.decompress(two.read_bytes())
    assert len(load_split(tmp_path / "c1", "train")) == 30
    # dev and test use each of their recordings once (10 dev, 20 test recordings in the copy);
    # a group left shorter than two digits stays out, so a split may use one less
    for split, recordings in (("dev", 10), ("test", 20)):
        cuts = load_split(tmp_path / "c1", split)
        used = [t.cut.recording.id for c in cuts for t in c.tracks]
        assert len(used) == len(set(used)) == a["recordings"][split] >= recordings - 1
        assert f"fsdd-connected {split}: {len(cuts)} utterances, not 10" in " ".join(a["notes"])
    for cut in load_split(tmp_path / "c1", "test"):
        words = cut_text(cut).split()
        assert 2 <= len(words) <= 7
        sources = [t.cut.recording.id for t in cut.tracks]
        assert all(int(s.split("_")[2]) < 5 for s in sources)  # test recordings only
        assert len({s.split("_")[1] for s in sources}) == 1  # one speaker
        audio = cut.load_audio()
        assert audio.shape[1] == pytest.approx(cut.duration * 16000, abs=2)


def test_yesno_and_librivox5(tmp_path):
    yn = prepare(PrepareArgs("yesno", tmp_path / "yn"))
    assert yn["splits"] == ["train", "dev", "test"]
    assert sum(len(load_split(tmp_path / "yn", s)) for s in yn["splits"]) == 60
    words = cut_text(next(iter(load_split(tmp_path / "yn", "test")))).split()
    assert len(words) == 8 and set(words) <= {"yes", "no"}
    lv = prepare(PrepareArgs("librivox5", tmp_path / "lv"))
    cuts = load_split(tmp_path / "lv", "test")
    assert lv["splits"] == ["test"] and len(cuts) == 5
    assert "dashwood" in " ".join(cut_text(c) for c in cuts)


def test_multi30k_text(tmp_path, bundled):
    prepare(PrepareArgs("multi30k", tmp_path / "m", limit=50, vocab_size=300))
    rows = load_text_split(tmp_path / "m", "test")
    assert len(rows) == 50
    en = (bundled / "multi30k" / "test_2016_flickr.en").read_text().splitlines()
    fr = (bundled / "multi30k" / "test_2016_flickr.fr").read_text().splitlines()
    assert rows[7]["en"] == en[7] and rows[7]["fr"] == fr[7]
    names = sorted(p.stem for p in (tmp_path / "m" / "tokenizers").iterdir())
    assert names == ["spm_de", "spm_en", "spm_en-de", "spm_en-fr", "spm_fr"]


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.flac")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_multi30k_speech_is_aligned_and_byte_identical(tmp_path, bundled):
    a = PrepareArgs("multi30k-speech", tmp_path / "s1", limit=12, vocab_size=200, num_workers=2)
    prepare(a)
    prepare(
        PrepareArgs("multi30k-speech", tmp_path / "s2", limit=12, vocab_size=200, num_workers=1)
    )
    prepare(PrepareArgs("multi30k-speech", tmp_path / "s3", limit=12, vocab_size=200, seed=2))
    assert _digest(tmp_path / "s1") == _digest(tmp_path / "s2")  # same seed, any worker count
    assert _digest(tmp_path / "s1") != _digest(tmp_path / "s3")  # another seed, other voices
    en = (bundled / "multi30k" / "val.en").read_text().splitlines()
    de = (bundled / "multi30k" / "val.de").read_text().splitlines()
    cuts = load_split(tmp_path / "s1", "dev")
    assert len(cuts) == 12
    for i, cut in enumerate(cuts):
        assert cut_text(cut) == en[i] and cut_text(cut, "de") == de[i]
        audio = cut.load_audio()
        assert cut.sampling_rate == 16000 and audio.shape[1] == cut.num_samples
        # eSpeak speaks at 130-200 words a minute: duration follows the sentence's length
        seconds_per_word = cut.duration / len(en[i].split())
        assert 0.15 < seconds_per_word < 1.0
        assert np.abs(audio).max() > 0.05


def test_multi30k_speech_test_speakers_are_voices_train_and_dev_never_use(tmp_path, bundled):
    a = PrepareArgs("multi30k-speech", tmp_path / "m", limit=12, vocab_size=200,
                    test_speakers=["m7", "f4"])  # fmt: skip
    prepare(a)
    speakers = {
        s: {c.supervisions[0].speaker for c in load_split(a.out, s)}
        for s in ("train", "dev", "test")
    }
    assert speakers["test"] and all(v.split("+")[1] in ("m7", "f4") for v in speakers["test"])
    for split in ("train", "dev"):
        assert speakers[split] and not any(v.split("+")[1] in ("m7", "f4") for v in speakers[split])
    # held-out accents and variants together: test speaks only with both
    seen, unseen = held_out_pools(["en-us-nyc", "m7"])
    assert unseen == (("en-us-nyc",), ("m7",))
    assert "en-us-nyc" not in seen[0] and "m7" not in seen[1] and len(seen[1]) == 14
    with pytest.raises(DataError, match="bob: not an eSpeak accent"):
        prepare(PrepareArgs("multi30k-speech", tmp_path / "x", limit=4, test_speakers=["bob"]))
    with pytest.raises(DataError, match="--dev-speakers: only fsdd and fsdd-connected"):
        prepare(PrepareArgs("multi30k-speech", tmp_path / "x", limit=4, dev_speakers=["m7"]))


def test_reuse_and_atomic_output(tmp_path, fsdd_copy):
    out = tmp_path / "f"
    prepare(PrepareArgs("fsdd", out, src=fsdd_copy))
    stamp = (out / "corpus.json").stat().st_mtime_ns
    prepare(PrepareArgs("fsdd", out, src=fsdd_copy))
    assert (out / "corpus.json").stat().st_mtime_ns == stamp  # reused, not redone
    (fsdd_copy / "recordings" / "1_theo_3.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DataError, match="1_theo_3.wav: not a readable audio file"):
        prepare(PrepareArgs("fsdd", tmp_path / "g", src=fsdd_copy))
    assert not (tmp_path / "g").exists() and _leftovers(tmp_path) == []


def test_asr_vocabulary_is_added_in_place_without_making_the_audio_again(tmp_path, bundled):
    out = tmp_path / "m"
    prepare(PrepareArgs("multi30k-speech", out, limit=40, vocab_size=200))
    audio = _digest(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    assert not (out / "tokenizers" / "spm_asr.json").exists()
    logged = []
    meta = prepare(
        PrepareArgs("multi30k-speech", out, limit=40, vocab_size=200, asr_vocab_size=60),
        log=logged.append,
    )
    assert meta["args"]["asr_vocab_size"] == 60 and "gains spm_asr" in logged[0]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == stamps  # not remade
    tok = load_tokenizer(out, "spm_asr")
    assert tok.vocab_size <= 60 and tok.decode(tok.encode("A dog, running.")) == "A DOG RUNNING"
    # a fresh preparation with the vocabulary writes the same corpus, audio and pieces
    fresh = tmp_path / "fresh"
    prepare(PrepareArgs("multi30k-speech", fresh, limit=40, vocab_size=200, asr_vocab_size=60))
    assert _digest(fresh) == audio
    assert (fresh / "tokenizers/spm_asr.spm").read_bytes() == (
        out / "tokenizers/spm_asr.spm"
    ).read_bytes()
    assert json.loads((fresh / "corpus.json").read_text())["args"] == meta["args"]
    # anything else that differs still needs --force
    with pytest.raises(DataError, match="differs in: vocab_size"):
        prepare(PrepareArgs("multi30k-speech", out, limit=40, vocab_size=100, asr_vocab_size=60))


def test_skip_invalid_counts_and_reports(tmp_path, fsdd_copy):
    rec = fsdd_copy / "recordings"
    (rec / "1_theo_3.wav").write_bytes(b"")
    sf.write(rec / "0_theo_3.wav", np.zeros((400, 2), np.float32), 8000)
    meta = prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy, skip_invalid=True))
    assert len(meta["skipped"]) == 2
    assert any("0_theo_3.wav: expected 1 channel(s), found 2" in s for s in meta["skipped"])
    n = sum(len(load_split(tmp_path / "f", s)) for s in ("train", "dev", "test"))
    assert n == 38


def test_other_sample_rate_is_resampled_and_said(tmp_path, fsdd_copy):
    rec = fsdd_copy / "recordings"
    audio, _ = sf.read(rec / "0_george_0.wav")
    sf.write(rec / "0_george_0.wav", np.repeat(audio, 3), 24000)
    meta = prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy))
    assert any("[8000, 24000] Hz resampled to 16000 Hz" in n for n in meta["notes"])
    cut = [c for c in load_split(tmp_path / "f", "test") if c.id == "0_george_0"][0]
    assert cut.sampling_rate == 16000 and cut.load_audio().shape[1] == cut.num_samples


def test_user_manifest_plugs_in(tmp_path, fsdd_copy):
    prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy))
    manifest = tmp_path / "f" / "cuts_train.jsonl.gz"
    meta = prepare(PrepareArgs(str(manifest), tmp_path / "u", split="train"))
    assert meta["kind"] == "speech" and len(load_split(tmp_path / "u", "train")) == 10


def test_user_manifest_errors(tmp_path, fsdd_copy):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"hello": "world"}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl: not a lhotse CutSet manifest"):
        prepare(PrepareArgs(str(bad), tmp_path / "u"))
    prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy))
    shutil.rmtree(fsdd_copy)  # the audio the manifest points at is gone
    with pytest.raises(DataError, match="0_george_11.wav: audio file not found"):
        prepare(PrepareArgs(str(tmp_path / "f" / "cuts_train.jsonl.gz"), tmp_path / "u"))


def test_empty_transcript_in_user_manifest(tmp_path, fsdd_copy):
    prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy))
    cuts = load_split(tmp_path / "f", "train").to_eager()
    cuts[0].supervisions[0].text = " "
    cuts.to_file(tmp_path / "e.jsonl.gz")
    with pytest.raises(DataError, match=f"cut {cuts[0].id}: empty transcript"):
        prepare(PrepareArgs(str(tmp_path / "e.jsonl.gz"), tmp_path / "u"))


def test_unknown_corpus(tmp_path):
    with pytest.raises(DataError, match="unknown corpus 'timit'"):
        prepare(PrepareArgs("timit", tmp_path / "t"))


def test_parallel_text_line_mismatch_via_prepare(tmp_path, bundled):
    src = tmp_path / "m30k"
    shutil.copytree(bundled / "multi30k", src)
    lines = (src / "val.fr").read_text().splitlines()[:-1]
    (src / "val.fr").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="val.fr has 1013"):
        prepare(PrepareArgs("multi30k", tmp_path / "m", src=src, vocab_size=100))


def test_user_manifests_for_several_splits_with_translations(tmp_path, fsdd_copy):
    """A MuST-C-like layout: one manifest per split, the translation in the supervision's
    custom fields (flat, or lhotse's translated_text mapping)."""
    prepare(PrepareArgs("fsdd", tmp_path / "f", src=fsdd_copy))
    paths = {}
    for split in ("train", "dev"):
        cuts = load_split(tmp_path / "f", split).to_eager()
        for i, c in enumerate(cuts):
            s = c.supervisions[0]
            s.language = "en"
            s.custom = {"de": f"zahl {s.text}"} if i % 2 else {"translated_text": {"de": "eins"}}
        paths[split] = tmp_path / f"{split}.jsonl.gz"
        cuts.to_file(paths[split])
    name = ",".join(f"{k}={v}" for k, v in paths.items())
    meta = prepare(PrepareArgs(name, tmp_path / "u", vocab_size=50))
    assert meta["splits"] == ["train", "dev"] and meta["languages"] == ["en", "de"]
    rows = [text_row(c) for c in load_split(tmp_path / "u", "dev")]
    assert {r["de"] for r in rows[::2]} == {"eins"} and rows[1]["de"].startswith("zahl ")
    for tok in ("spm_en", "spm_de", "spm_en-de", "chars"):
        assert load_tokenizer(tmp_path / "u", tok).vocab_size > 4
    with pytest.raises(DataError, match="expected SPLIT=MANIFEST"):
        prepare(PrepareArgs("train=,dev=x", tmp_path / "v"))
