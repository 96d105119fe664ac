"""`peerseq prepare`: a corpus (bundled, or the user's own) -> lhotse manifests and tokenizers
(peerseq.data.prepare does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _sizes(text: str) -> dict[str, int]:
    """'train=5000,dev=500,test=500' -> dict."""
    try:
        return {k: int(v) for k, v in (kv.split("=") for kv in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected split=N[,split=N...], e.g. train=5000,dev=500,test=500; got {text!r}"
        ) from None


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME...]; got {text!r}")
    return names


def cmd_prepare(args: argparse.Namespace) -> None:
    from peerseq.data.prepare import PrepareArgs, prepare
    from peerseq.data.stats import corpus_stats
    from peerseq.report.tables import print_corpus_table

    a = PrepareArgs(
        name=args.name,
        out=Path(args.out),
        src=args.src,
        seed=args.seed,
        limit=args.limit,
        vocab_size=args.vocab_size,
        asr_vocab_size=args.asr_vocab_size,
        skip_invalid=args.skip_invalid,
        split=args.split,
        num_workers=args.num_workers,
        force=args.force,
        allow_nonlocal_audio=args.allow_nonlocal_audio,
        test_speakers=args.test_speakers,
        dev_speakers=args.dev_speakers,
        shar=args.shar,
        shard_size=args.shard_size,
        tgt=args.tgt,
    )
    if args.sizes:
        a.sizes = args.sizes
    meta = prepare(a)
    print_corpus_table([corpus_stats(args.out)])
    print(f"prepared {meta['name']} in {args.out} ({meta.get('seconds', 0)} s)")


def add_prepare_command(sub) -> None:
    """The command's parser, under `peerseq`'s subcommands."""
    pp = sub.add_parser("prepare", help="corpus -> lhotse manifests, tokenizers")
    pp.add_argument(
        "name",
        help="fsdd, fsdd-connected, yesno, librivox5, multi30k, multi30k-speech, must-c (--src "
        "your copy, --tgt de); or a path (--split says which split): a lhotse CutSet manifest, "
        "a Kaldi data directory, a transcript file id<TAB>text (or the folder holding it and "
        "the audio); or several: train=A,dev=B,test=C",
    )
    pp.add_argument("--out", required=True, help="output directory")
    pp.add_argument("--src", type=Path, help="the corpus's source directory (default: bundled)")
    pp.add_argument("--seed", type=int, default=1, help="seed of synthesised corpora and splits")
    pp.add_argument("--limit", type=int, help="first N sentences of each split (multi30k*)")
    pp.add_argument(
        "--sizes",
        type=_sizes,
        help="fsdd-connected utterances per split, e.g. train=5000,dev=500,test=500",
    )
    m30k = "; multi30k-speech: eSpeak accents or variants only test speaks with, e.g. m7,f4"
    for which, example, more in (("test", "theo", m30k), ("dev", "george", "")):
        pp.add_argument(
            f"--{which}-speakers",
            type=_names,
            help=f"fsdd, fsdd-connected: comma-separated speakers whose recordings are all in "
            f"{which} and never train (speaker-disjoint evaluation), e.g. {example}{more}",
        )
    pp.add_argument(
        "--shar",
        nargs="?",
        const="audio",
        choices=["audio", "fbank80", "spec201"],
        help="also write every split as lhotse Shar shards in OUT/shar/: FLAC audio (the "
        "default), or features of that kind; for training with data.shar=true",
    )
    pp.add_argument("--shard-size", type=int, default=1000, help="cuts per Shar shard")
    pp.add_argument("--tgt", default="de", help="must-c: the target language of en-TGT")
    pp.add_argument("--vocab-size", type=int, default=8000, help="sentencepiece (soft limit)")
    pp.add_argument(
        "--asr-vocab-size",
        type=int,
        help="speech corpora: also the tokenizer spm_asr, sentencepiece of this size over the "
        "normalised transcripts (CTC targets shorter than chars); added in place to a corpus "
        "prepared without it",
    )
    pp.add_argument("--split", default="train", help="split name of a user manifest")
    pp.add_argument("--num-workers", type=int, default=2, help="processes computing features")
    pp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip (and count) invalid utterances instead of stopping",
    )
    pp.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier peerseq corpus in --out prepared with other settings (a "
        "directory peerseq did not write is never replaced)",
    )
    pp.add_argument(
        "--allow-nonlocal-audio",
        action="store_true",
        help="accept manifest audio sources other than local files. Refused by default: a "
        "lhotse 'command' source runs a shell command written in the manifest, a 'url' source "
        "is fetched at training time, 'memory' holds bytes of unknown origin; use it only for "
        "manifests you made yourself",
    )
    pp.set_defaults(func=cmd_prepare)
