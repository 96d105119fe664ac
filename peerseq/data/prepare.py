"""`peerseq prepare NAME|MANIFEST --out DIR`: corpora -> lhotse manifests + tokenizers.

The table CORPORA names every corpus peerseq knows; anything else given as NAME is taken as the
path of a lhotse CutSet manifest (LibriSpeech, TIMIT... from lhotse's recipes), one
split (--split), or as several manifests at once, `train=A.jsonl.gz,dev=B.jsonl.gz,test=C...`.
A manifest's cuts are segments: supervision text is the transcript, supervision language its
language code, and translations are kept in the supervision's custom fields by language code
(`custom: {de: "..."}` or lhotse's `custom: {translated_text: {de: "..."}}`).
Output is written to a temporary sibling of DIR and renamed when complete. Running the same
command again finds the finished directory and reuses it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile as sf
from lhotse import CutSet

from peerseq.data import manifest as mf
from peerseq.data.corpora import fsdd, fsdd_connected, librivox5, multi30k, multi30k_speech, yesno
from peerseq.data.io import atomic_dir
from peerseq.data.tokenizers import CharTokenizer, save_tokenizer, train_sentencepiece
from peerseq.errors import DataError
from peerseq.paths import bundled_data_dir


@dataclass
class PrepareArgs:
    name: str
    out: Path
    src: Path | None = None
    seed: int = 1
    limit: int | None = None  # first N sentences of each split (multi30k, multi30k-speech)
    sizes: dict[str, int] = field(default_factory=lambda: dict(fsdd_connected.DEFAULT_SIZES))
    vocab_size: int = 8000
    skip_invalid: bool = False
    split: str = "train"  # which split a user's manifest is
    num_workers: int = 2

    def key(self) -> dict:
        """What makes two preparations the same (to reuse a finished one)."""
        d = asdict(self)
        for k in ("out", "skip_invalid", "num_workers"):
            d.pop(k)
        d["src"] = str(self.src_dir())
        return d

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
    return {"kind": "speech", "splits": list(splits)}


def _prep_fsdd(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    return _speech(fsdd.load(a.src_dir(), faults), out, a)


def _prep_fsdd_connected(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    single = fsdd.load(a.src_dir(), faults)
    return _speech(fsdd_connected.load(single, a.seed, a.sizes), out, a)


def _prep_yesno(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    return _speech(yesno.load(a.src_dir(), faults), out, a)


def _prep_librivox5(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    return _speech(librivox5.load(a.src_dir(), faults), out, a)


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
    splits = multi30k.load(a.src_dir(), a.limit)
    for split, rows in splits.items():
        mf.write_text(rows, out, split)
    _train_text_tokenizers(splits["train"], list(multi30k.LANGS), out, a)
    return {"kind": "text", "splits": list(splits), "languages": list(multi30k.LANGS)}


def _prep_multi30k_speech(a: PrepareArgs, out: Path, faults: mf.Faults, final: Path) -> dict:
    splits = multi30k.load(a.src_dir(), a.limit)
    for split, rows in splits.items():
        cuts = multi30k_speech.synthesize(
            rows, out / "audio" / split, a.seed, a.num_workers, final / "audio" / split
        )
        mf.write_cuts(cuts, out, split)
    _train_text_tokenizers(splits["train"], list(multi30k.LANGS), out, a)
    save_tokenizer(CharTokenizer(), out, "chars")
    return {"kind": "speech", "splits": list(splits), "languages": list(multi30k.LANGS)}


CORPORA: dict[str, Callable] = {
    "fsdd": _prep_fsdd,
    "fsdd-connected": _prep_fsdd_connected,
    "yesno": _prep_yesno,
    "librivox5": _prep_librivox5,
    "multi30k": _prep_multi30k,
    "multi30k-speech": _prep_multi30k_speech,
}


def _check_user_cuts(cuts: CutSet, path: Path, faults: mf.Faults) -> CutSet:
    """Every cut of a user's manifest has readable audio and a non-empty transcript."""
    keep = []
    for cut in cuts:
        try:
            if not mf.cut_text(cut):
                raise DataError(f"{path}: cut {cut.id}: empty transcript (supervision text)")
            if cut.has_recording:
                for src in cut.recording.sources:
                    if src.type == "file":
                        try:
                            sf.info(src.source)
                        except Exception as e:
                            raise DataError(
                                f"{path}: cut {cut.id}: audio {src.source}: {e}"
                            ) from None
            elif not cut.has_features:
                raise DataError(f"{path}: cut {cut.id}: has neither a recording nor features")
        except DataError as e:
            faults.handle(e)
            continue
        keep.append(cut)
    return CutSet.from_cuts(keep)


# a language code (ISO 639-1/-3, optionally with a region: en, de, pt-br, zh_cn): the custom
# fields that hold translations; others (speaker, orig_text, ...) get no tokenizer
LANG_CODE = re.compile(r"[a-z]{2,3}(?:[-_][a-z]{2,4})?")


def manifest_splits(name: str, split: str) -> dict[str, Path] | None:
    """`train=A,dev=B` or one manifest path (as `split`) -> {split: path}; None if NAME is
    neither (a corpus name)."""
    if "=" in name:
        out = {}
        for item in name.split(","):
            key, sep, path = item.partition("=")
            if not sep or not key or not path:
                raise DataError(f"'{name}': expected SPLIT=MANIFEST[,SPLIT=MANIFEST...]")
            out[key.strip()] = Path(path.strip())
        return out
    return {split: Path(name)} if Path(name).is_file() else None


def _prep_manifest(a: PrepareArgs, out: Path, faults: mf.Faults) -> dict:
    splits = manifest_splits(a.name, a.split) or {}
    for split, path in splits.items():
        cuts = _check_user_cuts(mf.load_cutset(path), path, faults)
        mf.write_cuts(cuts, out, split)
        if split == "train":
            rows = [mf.text_row(c) for c in cuts]
    save_tokenizer(CharTokenizer(), out, "chars")
    langs = []
    if "train" in splits:
        langs = [
            k for k in rows[0] if k != "id" and LANG_CODE.fullmatch(k) and all(k in r for r in rows)
        ]
        # the transcript's own language first: joint vocabularies pair it with each other one
        langs.sort(key=lambda k: not all(r[k] == r["transcript"] for r in rows))
        if langs:
            _train_text_tokenizers(rows, langs, out, a)
    return {
        "kind": "speech",
        "splits": list(splits),
        "languages": langs,
        "manifest": {k: str(p.resolve()) for k, p in splits.items()},
    }


def prepare(a: PrepareArgs, log: Callable[[str], None] = print) -> dict:
    """Prepare one corpus into a.out (atomically); returns the corpus.json contents."""
    out = Path(a.out)
    if (out / "corpus.json").is_file():
        meta = json.loads((out / "corpus.json").read_text())
        if meta.get("args") == json.loads(json.dumps(a.key(), default=str)):
            log(f"{a.name}: already prepared in {out}")
            return meta
    if a.name not in CORPORA and manifest_splits(a.name, a.split) is None:
        raise DataError(
            f"unknown corpus '{a.name}': expected one of {', '.join(CORPORA)} "
            "or the path of a lhotse CutSet manifest"
        )
    faults = mf.Faults(skip_invalid=a.skip_invalid)
    start = time.time()
    with atomic_dir(out) as tmp:
        if a.name == "multi30k-speech":
            meta = _prep_multi30k_speech(a, tmp, faults, out.resolve())
        elif a.name in CORPORA:
            meta = CORPORA[a.name](a, tmp, faults)
        else:
            meta = _prep_manifest(a, tmp, faults)
        meta |= {
            "name": a.name,
            "args": json.loads(json.dumps(a.key(), default=str)),
            "notes": faults.notes,
            "skipped": faults.skipped,
            "seconds": round(time.time() - start, 1),
        }
        mf.write_corpus_json(tmp, meta)
    for note in faults.notes:
        log(f"note: {note}")
    if faults.skipped:
        log(f"skipped {len(faults.skipped)} invalid utterance(s) (--skip-invalid):")
        for s in faults.skipped[:20]:
            log(f"  {s}")
    return meta
