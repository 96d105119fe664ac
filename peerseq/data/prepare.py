"""`peerseq prepare NAME|MANIFEST --out DIR`: corpora -> lhotse manifests + tokenizers.

The table CORPORA names every corpus peerseq knows; anything else given as NAME is taken as the
path of a lhotse CutSet manifest (LibriSpeech, TIMIT... from lhotse's recipes), one
split (--split), or as several manifests at once, `train=A.jsonl.gz,dev=B.jsonl.gz,test=C...`.
A manifest's cuts are segments: supervision text is the transcript, supervision language its
language code, and translations are kept in the supervision's custom fields by language code
(`custom: {de: "..."}` or lhotse's `custom: {translated_text: {de: "..."}}`).
Output is written to a temporary sibling of DIR and renamed when complete. Running the same
command again finds the finished directory and reuses it.

prepare never deletes what it did not write: an existing DIR must be empty or an earlier peerseq
corpus (its corpus.json); one prepared with other settings is replaced only with `force`, and
only if it holds nothing but what prepare and training write there (out_dir.OWNED).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lhotse import CutSet

from peerseq.data import manifest as mf
from peerseq.data.config import DataConfig
from peerseq.data.corpora import (
    fsdd,
    fsdd_connected,
    librivox5,
    multi30k,
    multi30k_speech,
    must_c,
    yesno,
)
from peerseq.data.corpora.user_audio import LANG_CODE, load_user_audio
from peerseq.data.out_dir import reusable_corpus
from peerseq.data.shar import SHAR_KINDS, write_shar
from peerseq.data.synth import held_out_pools
from peerseq.data.tokenizers import (
    CharTokenizer,
    save_tokenizer,
    train_normalized_sentencepiece,
    train_sentencepiece,
)
from peerseq.data.user_checks import check_user_cuts
from peerseq.errors import DataError
from peerseq.files import DirectoryTaken, atomic_dir, ensure_writable_dir
from peerseq.paths import bundled_data_dir
from peerseq.typed import from_dict


@dataclass
class PrepareArgs:
    name: str
    out: Path
    src: Path | None = None
    seed: int = 1
    limit: int | None = None  # first N sentences of each split (multi30k, multi30k-speech)
    sizes: dict[str, int] = field(default_factory=lambda: dict(fsdd_connected.DEFAULT_SIZES))
    # fsdd, fsdd-connected: speakers whose every recording is in test (dev) and never trains
    test_speakers: list[str] | None = None
    dev_speakers: list[str] | None = None
    # also write every split as lhotse Shar shards (shar/{split}/): "audio" (FLAC) or a
    # feature kind (fbank80, spec201); training reads them with data.shar
    shar: str | None = None
    shard_size: int = 1000  # cuts per shard
    tgt: str = "de"  # must-c: the target language (en-{tgt})
    vocab_size: int = 8000
    # speech corpora: also spm_asr, a sentencepiece vocabulary of this size over the training
    # transcripts normalised as `chars` normalises them (CTC targets shorter than characters)
    asr_vocab_size: int | None = None
    skip_invalid: bool = False
    split: str = "train"  # which split a user's manifest is
    num_workers: int = 2
    force: bool = False  # replace an earlier peerseq corpus prepared with other settings
    # lhotse audio sources other than local files: "command" runs a shell command the manifest
    # names, "url" fetches at training time, "memory" holds bytes of unknown origin
    allow_nonlocal_audio: bool = False

    def key(self) -> dict:
        """What makes two preparations the same (to reuse a finished one)."""
        d = asdict(self)
        for k in ("out", "skip_invalid", "num_workers", "force", "allow_nonlocal_audio"):
            d.pop(k)
        # unset: the key of earlier corpora
        for k in ("test_speakers", "dev_speakers", "shar", "asr_vocab_size"):
            if d[k] is None:
                d.pop(k)
        if self.shar is None:
            d.pop("shard_size")
        if self.name != "must-c":
            d.pop("tgt")
        if self.name == "fsdd-connected":  # dev and test no longer reuse recordings
            d["eval_recordings"] = "once"
        d["src"] = str(self.src_dir())
        return d

    def speakers(self) -> dict:
        return {
            "test_speakers": tuple(self.test_speakers or ()),
            "dev_speakers": tuple(self.dev_speakers or ()),
        }

    def src_dir(self) -> Path:
        if self.src is not None:
            return Path(self.src)
        bundled = {"fsdd-connected": "fsdd", "multi30k-speech": "multi30k"}.get(
            self.name, self.name
        )
        return bundled_data_dir() / bundled


def _speech(splits: dict[str, CutSet], out: Path, a: PrepareArgs) -> dict:
    for split, cuts in splits.items():
        mf.write_cuts(cuts, out, split)
    save_tokenizer(CharTokenizer(), out, "chars")
    _asr_tokenizer(out, a)
    return {"kind": "speech", "splits": list(splits), "speakers": mf.split_speakers(splits)}


def _prep_fsdd(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    return _speech(fsdd.load(a.src_dir(), faults, **a.speakers()), out, a)


def _prep_fsdd_connected(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    single = fsdd.load(a.src_dir(), faults, **a.speakers())
    splits = fsdd_connected.load(single, a.seed, a.sizes, faults.notes)
    meta = _speech(splits, out, a)
    meta["recordings"] = {s: len(mf.recording_ids(c)) for s, c in splits.items()}
    return meta


def _prep_yesno(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    return _speech(yesno.load(a.src_dir(), faults), out, a)


def _prep_librivox5(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    return _speech(librivox5.load(a.src_dir(), faults), out, a)


def _asr_tokenizer(out: Path, a: PrepareArgs) -> None:
    """spm_asr from the written training cuts' transcripts, when a.asr_vocab_size asks it."""
    if a.asr_vocab_size is None:
        return
    if not (out / "cuts_train.jsonl.gz").is_file():
        raise DataError("--asr-vocab-size: the corpus has no train split to learn it from")
    texts = [mf.cut_text(c) for c in mf.load_split(out, "train")]
    save_tokenizer(train_normalized_sentencepiece(texts, a.asr_vocab_size, a.seed), out, "spm_asr")


def _train_text_tokenizers(rows: list[dict], langs: list[str], out: Path, a: PrepareArgs) -> None:
    """spm_{lang} for each language and spm_{src}-{tgt} joint vocabularies (paper 000's "*")."""
    for lang in langs:
        save_tokenizer(
            train_sentencepiece([r[lang] for r in rows], a.vocab_size, a.seed), out, f"spm_{lang}"
        )
    src = langs[0]
    for tgt in langs[1:]:
        joint = [r[src] for r in rows] + [r[tgt] for r in rows]
        save_tokenizer(train_sentencepiece(joint, a.vocab_size, a.seed), out, f"spm_{src}-{tgt}")


def _prep_multi30k(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    splits = multi30k.load(a.src_dir(), a.limit, faults.notes)
    for split, rows in splits.items():
        mf.write_text(rows, out, split)
    _train_text_tokenizers(splits["train"], list(multi30k.LANGS), out, a)
    return {"kind": "text", "splits": list(splits), "languages": list(multi30k.LANGS)}


def _prep_multi30k_speech(a: PrepareArgs, out: Path, faults: mf.Faults, final: Path) -> dict:
    splits = multi30k.load(a.src_dir(), a.limit, faults.notes)
    pools = {}
    if a.test_speakers:  # synthesised speakers: test voices that train and dev never use
        try:
            seen, unseen = held_out_pools(a.test_speakers)
        except ValueError as e:
            raise DataError(f"--test-speakers: {e}") from None
        pools = {split: unseen if split == "test" else seen for split in splits}
    for split, rows in splits.items():
        cuts = multi30k_speech.synthesize(
            rows,
            out / "audio" / split,
            a.seed,
            a.num_workers,
            final / "audio" / split,
            pools.get(split),
        )
        mf.write_cuts(cuts, out, split)
    _train_text_tokenizers(splits["train"], list(multi30k.LANGS), out, a)
    save_tokenizer(CharTokenizer(), out, "chars")
    _asr_tokenizer(out, a)
    return {"kind": "speech", "splits": list(splits), "languages": list(multi30k.LANGS)}


def manifest_splits(name: str, split: str) -> dict[str, Path] | None:
    """`train=A,dev=B` or one path (as `split`) -> {split: path}; None if NAME is neither (a
    corpus name). A path is a lhotse CutSet manifest, a Kaldi data directory, or a transcript
    file (or the folder holding one) beside audio files (corpora.user_audio)."""
    if "=" in name:
        out = {}
        for item in name.split(","):
            key, sep, path = item.partition("=")
            if not sep or not key or not path:
                raise DataError(f"'{name}': expected SPLIT=MANIFEST[,SPLIT=MANIFEST...]")
            out[key.strip()] = Path(path.strip())
        return out
    return {split: Path(name)} if Path(name).exists() else None


def _prep_manifest(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    splits = manifest_splits(a.name, a.split) or {}
    loaded = {}
    for split, path in splits.items():
        cuts = load_user_audio(path, faults, a.allow_nonlocal_audio)
        loaded[split] = (cuts if cuts is not None else mf.load_cutset(path), path)
    meta = _user_speech(loaded, out, a, faults)
    return meta | {"manifest": {k: str(p.resolve()) for k, p in splits.items()}}


def _prep_must_c(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    if a.src is None:
        raise DataError("must-c: give your copy of MuST-C with --src DIR (it is not bundled)")
    splits = must_c.load(a.src, a.tgt)
    return _user_speech({k: (c, Path(a.src) / k) for k, c in splits.items()}, out, a, faults)


def _user_speech(
    splits: dict[str, tuple[CutSet, Path]], out: Path, a: PrepareArgs, faults: mf.Faults
) -> dict:
    """Cuts from outside (a manifest, a folder, MuST-C): checked as the bundled corpora are,
    resampled, written, and their train split's languages given tokenizers."""
    for split, (cuts, path) in splits.items():
        cuts = check_user_cuts(cuts, path, faults, a.allow_nonlocal_audio)
        cuts = mf.resample_to_target(cuts, faults, str(path))
        mf.write_cuts(cuts, out, split)
        if split == "train":
            rows = [mf.text_row(c) for c in cuts]
    save_tokenizer(CharTokenizer(), out, "chars")
    _asr_tokenizer(out, a)
    langs = []
    if "train" in splits:
        langs = [
            k for k in rows[0] if k != "id" and LANG_CODE.fullmatch(k) and all(k in r for r in rows)
        ]
        # the transcript's own language first: joint vocabularies pair it with each other one
        langs.sort(key=lambda k: not all(r[k] == r["transcript"] for r in rows))
        if langs:
            _train_text_tokenizers(rows, langs, out, a)
    return {"kind": "speech", "splits": list(splits), "languages": langs}


CORPORA: dict[str, Callable] = {
    "fsdd": _prep_fsdd,
    "fsdd-connected": _prep_fsdd_connected,
    "yesno": _prep_yesno,
    "librivox5": _prep_librivox5,
    "multi30k": _prep_multi30k,
    "multi30k-speech": _prep_multi30k_speech,
    "must-c": _prep_must_c,
}


def _with_asr_vocab(
    out: Path, key: dict, a: PrepareArgs, log: Callable[[str], None]
) -> dict | None:
    """The corpus.json of `out` after training its spm_asr in place, if `out` is a speech corpus
    prepared with the same settings but another (or no) --asr-vocab-size; else None. A
    vocabulary needs no new audio: multi30k-speech's 29,000 utterances take hours to make."""
    if a.asr_vocab_size is None:
        return None
    try:
        meta = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
        args = dict(meta["args"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no corpus there (or not ours): reusable_corpus says what it is

    def rest(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != "asr_vocab_size"}

    if args == key or meta.get("kind") != "speech" or rest(args) != rest(key):
        return None
    _asr_tokenizer(out, a)
    meta["args"] = key  # written last: a crash before it leaves the old corpus.json, retried
    mf.write_corpus_json(out, meta)
    log(f"{a.name}: {out} gains spm_asr ({a.asr_vocab_size} pieces); nothing else changed")
    return meta


def prepare(a: PrepareArgs, log: Callable[[str], None] = print) -> dict:
    """Prepare one corpus into a.out (atomically); returns the corpus.json contents."""
    out = Path(a.out)
    key = json.loads(json.dumps(a.key(), default=str))
    meta = _with_asr_vocab(out, key, a, log) or reusable_corpus(out, key, a.force)
    if meta is not None:
        log(f"{a.name}: already prepared in {out}")
        return meta
    ensure_writable_dir(out.parent, "--out")
    replacing = (out / "corpus.json").is_file()  # reusable_corpus allowed it: --force
    if replacing:
        log(f"--force: replacing the corpus in {out}")
    if a.name not in CORPORA and manifest_splits(a.name, a.split) is None:
        raise DataError(
            f"unknown corpus '{a.name}': expected one of {', '.join(CORPORA)} "
            "or the path of a lhotse CutSet manifest"
        )
    if a.dev_speakers and a.name not in ("fsdd", "fsdd-connected"):
        raise DataError(
            f"--dev-speakers: only fsdd and fsdd-connected are split by speaker "
            f"here, not {a.name} (a manifest's splits are what you give)"
        )
    if a.test_speakers and a.name not in ("fsdd", "fsdd-connected", "multi30k-speech"):
        raise DataError(
            f"--test-speakers: only fsdd, fsdd-connected and multi30k-speech are split by speaker "
            f"here, not {a.name} (a manifest's splits are what you give)"
        )
    if a.shar is not None and a.shar not in SHAR_KINDS:
        raise DataError(f"--shar {a.shar}: expected one of {', '.join(SHAR_KINDS)}")
    if a.shard_size < 1:
        raise DataError(f"--shard-size {a.shard_size}: expected at least 1")
    faults = mf.Faults(skip_invalid=a.skip_invalid)
    try:
        meta = _prepare_into(a, out, key, faults, replacing)
    except DirectoryTaken:
        again = reusable_corpus(out, key, False)  # another process prepared the same meanwhile
        if again is None:
            raise
        log(f"{a.name}: prepared meanwhile by another process in {out}")
        return again
    for note in faults.notes:
        log(f"note: {note}")
    if faults.skipped:
        log(f"skipped {len(faults.skipped)} invalid utterance(s) (--skip-invalid):")
        for s in faults.skipped[:20]:
            log(f"  {s}")
    return meta


def _prepare_into(a: PrepareArgs, out: Path, key: dict, faults: mf.Faults, replacing: bool) -> dict:
    start = time.time()
    # replace=False: whatever appeared at `out` while this ran is not removed (the rename fails)
    with atomic_dir(out, replace=replacing) as tmp:
        if a.name == "multi30k-speech":
            meta = _prep_multi30k_speech(a, tmp, faults, out.resolve())
        elif a.name in CORPORA:
            meta = CORPORA[a.name](a, tmp, faults)
        else:
            meta = _prep_manifest(a, tmp, faults)
        if a.shar:
            if meta["kind"] != "speech":
                raise DataError(f"--shar: {a.name} is a text corpus; Shar shards hold speech")
            meta["shar"] = {
                "kind": a.shar,
                "shards": {
                    split: write_shar(mf.load_split(tmp, split), tmp, split, a.shar, a.shard_size)
                    for split in meta["splits"]
                },
            }
        meta |= {
            "name": a.name,
            "args": key,
            "notes": faults.notes,
            "skipped": faults.skipped,
            "seconds": round(time.time() - start, 1),
        }
        mf.write_corpus_json(tmp, meta)
    return meta


def prepare_corpus(cfg: DataConfig, log: Callable[[str], None] = print) -> None:
    """A run's preparation step: make `data.corpus` as `data.prepare` describes, unless it is
    prepared already. Nothing else prepares a corpus (decoding and evaluation refuse a missing
    one)."""
    corpus = Path(cfg.corpus)
    wants_asr_vocab = cfg.prepare.get("asr_vocab_size") is not None
    if (corpus / "corpus.json").is_file() and not (
        wants_asr_vocab and not (corpus / "tokenizers" / "spm_asr.json").is_file()
    ):
        return
    if not cfg.prepare:
        raise DataError(
            f"data.corpus: {cfg.corpus} is not a prepared corpus and data.prepare is empty"
        )
    prepare(from_dict(PrepareArgs, {"out": cfg.corpus, **cfg.prepare}, source="data.prepare"), log)
