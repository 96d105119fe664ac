"""A user's own audio as a lhotse CutSet: a folder of audio files with a transcript file, or a
Kaldi data directory (through lhotse's load_kaldi_data_dir). prepare then checks and resamples
the cuts as it does a user's manifest.

Transcript file (UTF-8, tab-separated, one utterance per line):

    id<TAB>text                       no header: the id and the transcript
    id<TAB>en<TAB>de<TAB>speaker      a header naming the columns: the first text column is the
                                      transcript (its name is its language code, or "text"),
                                      other language codes are translations, "speaker" is kept

The audio of utterance `id` is the file `id.wav` (or .flac, .ogg, .mp3, .opus) in the
transcript's folder or below it.
"""

from __future__ import annotations

import re
from pathlib import Path

from lhotse import CutSet

from peerseq.data.audio import audio_files
from peerseq.data.manifest import Faults, cuts_from, recording_from_file, whole_recording
from peerseq.errors import DataError

LANG_CODE = re.compile(r"[a-z]{2,3}(?:[-_][a-z]{2,4})?")


def is_kaldi_dir(path: Path) -> bool:
    return path.is_dir() and (path / "wav.scp").is_file()


def transcript_file(path: Path) -> Path | None:
    """The transcript a folder or file names: the file itself, or the folder's one *.tsv."""
    if path.is_file() and path.suffix in (".tsv", ".txt"):
        return path
    if path.is_dir() and not is_kaldi_dir(path):
        found = sorted(path.glob("*.tsv"))
        if len(found) != 1:
            raise DataError(
                f"{path}: expected one transcript file *.tsv (id<TAB>text) beside the audio, "
                f"found {len(found)}{': ' + ', '.join(p.name for p in found) if found else ''}"
            )
        return found[0]
    return None


def _columns(first: list[str], path: Path) -> tuple[list[str], bool]:
    """The column names, and whether the first line is a header."""
    if first[0] != "id":
        if len(first) != 2:
            raise DataError(
                f"{path}:1: {len(first)} columns without a header; expected id<TAB>text, or a "
                "first line 'id<TAB>text<TAB>de...' naming the columns"
            )
        return ["id", "text"], False
    names = first
    text = names[1] if len(names) > 1 else ""
    if text != "text" and not LANG_CODE.fullmatch(text):
        raise DataError(
            f"{path}:1: the second column is '{text}'; expected the transcript's column, named "
            "'text' or by its language code (en, de, ...)"
        )
    for name in names[2:]:
        if name != "speaker" and not LANG_CODE.fullmatch(name):
            raise DataError(
                f"{path}:1: column '{name}': expected a language code (a translation) or 'speaker'"
            )
    if len(set(names)) != len(names):
        raise DataError(f"{path}:1: a column name repeats: {names}")
    return names, True


def _audio_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for f in audio_files(folder):
        files.setdefault(f.stem, f)
    return files


def load_folder(transcripts: Path, faults: Faults) -> CutSet:
    """Cuts for a transcript file and the audio files beside it (see the module docstring)."""
    try:
        lines = transcripts.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{transcripts}: cannot read it as UTF-8 text ({e})") from None
    rows = [(n, line.split("\t")) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise DataError(f"{transcripts}: empty; expected id<TAB>text lines")
    names, header = _columns(rows[0][1], transcripts)
    rows = rows[1:] if header else rows
    audio = _audio_files(transcripts.parent)
    lang = names[1] if names[1] != "text" else None
    recs, sups, seen = [], [], set()
    for n, cols in rows:
        try:
            if len(cols) != len(names):
                raise DataError(
                    f"{transcripts}:{n}: {len(cols)} columns, expected {len(names)} "
                    f"({', '.join(names)})"
                )
            row = dict(zip(names, (c.strip() for c in cols), strict=True))
            uid = row["id"]
            if uid in seen:
                raise DataError(f"{transcripts}:{n}: id '{uid}' is given twice")
            seen.add(uid)
            if uid not in audio:
                raise DataError(
                    f"{transcripts}:{n}: no audio file for '{uid}' ({uid}.wav, .flac, ...) in "
                    f"{transcripts.parent} or below"
                )
        except DataError as e:
            faults.handle(e)
            continue
        rec = recording_from_file(audio[uid], uid, faults)
        if rec is None:
            continue
        recs.append(rec)
        custom = {k: v for k, v in row.items() if k not in ("id", "speaker", names[1])}
        sups.append(
            whole_recording(
                rec,
                row[names[1]],
                language=lang,
                speaker=row.get("speaker") or None,
                custom=custom or None,
            )
        )
    if not recs:
        raise DataError(f"{transcripts}: no usable utterance")
    return cuts_from(recs, sups)


def load_kaldi(folder: Path, allow_nonlocal: bool) -> CutSet:
    """Cuts for a Kaldi data directory: wav.scp, text, utt2spk, optional segments and reco2dur.

    The sampling rate is read from the first audio file. wav.scp entries that are commands
    (`... |`) are refused unless allow_nonlocal: lhotse would run them already while reading
    the durations."""
    from lhotse.kaldi import load_kaldi_data_dir

    scp = folder / "wav.scp"
    entries = [line.split(maxsplit=1) for line in scp.read_text().splitlines() if line.strip()]
    for n, entry in enumerate(entries, 1):
        if len(entry) != 2:
            raise DataError(f"{scp}:{n}: expected '<recording-id> <file or command |>'")
    commands = [e[0] for e in entries if e[1].rstrip().endswith("|")]
    if commands and not allow_nonlocal:
        raise DataError(
            f"{scp}: {len(commands)} entries are shell commands (e.g. {commands[0]}); refused, "
            "since they run on this machine: pass --allow-nonlocal-audio if you trust them, or "
            "write the audio to files"
        )
    for name in ("text", "utt2spk"):
        if not (folder / name).is_file():
            raise DataError(f"{folder}: a Kaldi data directory needs '{name}' (it has wav.scp)")
    files = [e[1].strip() for e in entries if not e[1].rstrip().endswith("|")]
    if not files:
        raise DataError(f"{scp}: only commands; peerseq reads the sampling rate from a file")
    rate = recording_from_file(Path(files[0]), "first", Faults()).sampling_rate
    try:
        recs, sups, _ = load_kaldi_data_dir(folder, sampling_rate=rate, num_jobs=1)
    except Exception as e:  # lhotse asserts and raises many types; all mean a bad directory
        raise DataError(
            f"{folder}: not a usable Kaldi data directory ({type(e).__name__}: {e})"
        ) from None
    if sups is None or len(sups) == 0:
        raise DataError(f"{folder}: no utterances (text, utt2spk)")
    # one cut per utterance (a segments file may cut several from a recording), named by it
    cuts = CutSet.from_manifests(recordings=recs, supervisions=sups)
    return cuts.trim_to_supervisions(keep_overlapping=False).to_eager()


def load_user_audio(path: Path, faults: Faults, allow_nonlocal: bool) -> CutSet | None:
    """A Kaldi directory's or a transcript's cuts; None if `path` is neither (a manifest)."""
    if is_kaldi_dir(path):
        return load_kaldi(path, allow_nonlocal)
    transcripts = transcript_file(path)
    return None if transcripts is None else load_folder(transcripts, faults)
