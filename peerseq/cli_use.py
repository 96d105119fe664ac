"""`peerseq transcribe` and `peerseq translate`: a trained model on files or sentences
(peerseq.inference does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from peerseq.errors import PeerseqError
from peerseq.rundir.layout import WEIGHTS


def _print_results(results, fmt: str) -> None:
    import json

    if fmt == "json":
        print(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=1))
        return
    for r in results:
        print(f"{r.source}\t{r.text}")


def cmd_transcribe(args: argparse.Namespace) -> None:
    from peerseq.inference import load

    model = load(args.model, args.peer, args.weights, onnx=args.onnx)
    _print_results(model.transcribe(args.audio, args.batch_size, args.beam), args.format)


def cmd_translate(args: argparse.Namespace) -> None:
    from peerseq.inference import load

    model = load(args.model, args.peer, args.weights)
    texts = list(args.text or [])
    if args.text_file:
        path = Path(args.text_file)
        if not path.is_file():
            raise PeerseqError(f"--text-file {path}: no such file")
        texts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if model.reads_speech:
        if texts or not args.audio:
            raise PeerseqError(
                f"{args.model}: peer '{model.name}' translates speech: give audio files or "
                "folders, not --text"
            )
        inputs = args.audio
    else:
        if args.audio or not texts:
            raise PeerseqError(
                f"{args.model}: peer '{model.name}' translates text: give --text or --text-file"
            )
        inputs = texts
    _print_results(model.translate(inputs, args.batch_size, args.beam), args.format)


def add_use_commands(sub) -> None:
    """The two commands' parsers, under `peerseq`'s subcommands."""
    for name, helptext in (
        ("transcribe", "run a speech model on audio files or folders"),
        ("translate", "run a translation model on audio (ST) or sentences (MT)"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("model", help="an export (peerseq export) or a run directory")
        q.add_argument(
            "audio", nargs="*" if name == "translate" else "+", help="audio files or folders"
        )
        if name == "translate":
            q.add_argument("--text", action="append", help="a sentence (repeatable)")
            q.add_argument("--text-file", help="one sentence per line")
        q.add_argument("--peer", help="the peer of a run with several (default: its only one)")
        q.add_argument("--weights", default="best", choices=WEIGHTS, help="which weights")
        q.add_argument("--format", default="text", choices=("text", "json"), help="output format")
        q.add_argument("--beam", type=int, help="beam width (default: the model's decode.beam)")
        q.add_argument("--batch-size", type=int, default=16, help="inputs per batch")
        if name == "transcribe":
            q.add_argument(
                "--onnx", action="store_true", help="run the export's model.onnx (onnxruntime)"
            )
        q.set_defaults(func=cmd_transcribe if name == "transcribe" else cmd_translate)
