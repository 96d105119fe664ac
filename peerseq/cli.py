"""The `peerseq` command. Bad input prints one line naming what is wrong and exits with 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peerseq.errors import PeerseqError


def _sizes(text: str) -> dict[str, int]:
    """'train=5000,dev=500,test=500' -> dict."""
    try:
        return {k: int(v) for k, v in (kv.split("=") for kv in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected split=N[,split=N...], e.g. train=5000,dev=500,test=500; got {text!r}"
        ) from None


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
        skip_invalid=args.skip_invalid,
        split=args.split,
        num_workers=args.num_workers,
    )
    if args.sizes:
        a.sizes = args.sizes
    meta = prepare(a)
    print_corpus_table([corpus_stats(args.out)])
    print(f"prepared {meta['name']} in {args.out} ({meta.get('seconds', 0)} s)")


def cmd_demo(args: argparse.Namespace) -> None:
    from peerseq.demo import run_demo

    run_demo(Path(args.workdir))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peerseq", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    pp = sub.add_parser("prepare", help="corpus -> lhotse manifests, tokenizers")
    pp.add_argument(
        "name",
        help="fsdd, fsdd-connected, yesno, librivox5, multi30k, "
        "multi30k-speech, or the path of a lhotse CutSet manifest",
    )
    pp.add_argument("--out", required=True, help="output directory")
    pp.add_argument("--src", type=Path, help="the corpus's source directory (default: bundled)")
    pp.add_argument("--seed", type=int, default=1)
    pp.add_argument("--limit", type=int, help="first N sentences of each split (multi30k*)")
    pp.add_argument(
        "--sizes",
        type=_sizes,
        help="fsdd-connected utterances per split, e.g. train=5000,dev=500,test=500",
    )
    pp.add_argument("--vocab-size", type=int, default=8000, help="sentencepiece (soft limit)")
    pp.add_argument("--split", default="train", help="split name of a user manifest")
    pp.add_argument("--num-workers", type=int, default=2)
    pp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip (and count) invalid utterances instead of stopping",
    )
    pp.set_defaults(func=cmd_prepare)

    pd = sub.add_parser("demo", help="prepare the bundled corpora and print their table")
    pd.add_argument("--workdir", default="exp/demo")
    pd.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except PeerseqError as e:
        print(f"peerseq: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
