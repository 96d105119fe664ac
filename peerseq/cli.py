"""The `peerseq` command. Bad input prints one line naming what is wrong and exits with 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from peerseq import __version__
from peerseq.cli_prepare import add_prepare_command
from peerseq.cli_use import add_use_commands
from peerseq.errors import PeerseqError, describe
from peerseq.rundir.layout import WEIGHTS, RunDir


def train_run(config: str | Path, overrides: list[str], resume: bool = True):
    """`peerseq train CONFIG OVERRIDES [--resume]` in this process -> the final training state."""
    from peerseq.config import load_config
    from peerseq.experiment import Experiment
    from peerseq.train import train

    return train(load_config(Experiment, config, overrides), resume=resume)


def cmd_train(args: argparse.Namespace) -> None:
    import os

    from peerseq.config import load_config
    from peerseq.experiment import Experiment
    from peerseq.report.run_page import run_report

    state = train_run(args.config, args.overrides, resume=args.resume)
    print(f"finished at step {state.step}, epoch {state.epoch}; best {state.best}")
    if int(os.environ.get("RANK", "0")) == 0:  # one page, by the first process
        out_dir = load_config(Experiment, args.config, args.overrides).out_dir
        print(f"wrote {run_report(out_dir)}")


def cmd_decode(args: argparse.Namespace) -> None:
    from peerseq.decoding.outputs import write_outputs
    from peerseq.metrics.score import score
    from peerseq.runs import decode_split, load_run, source_corpus

    run = load_run(args.run, args.weights, data=args.data or source_corpus(args.run))
    decoded = decode_split(run, args.peer, args.split, args.beam)
    out = Path(args.out or RunDir(run.dir).decode / f"{args.peer}.{args.split}.hyp")
    jsonl = write_outputs(decoded, out)
    metric = run.exp.peers[args.peer].decode.metric
    if metric != "none":
        value, signature = score(decoded.refs, decoded.hyps, metric)
        print(f"{args.peer} {args.split} {metric} {value:.2f}  ({signature})")
    print(f"wrote {len(decoded.hyps)} hypotheses to {out}, with ids and references to {jsonl}")


def cmd_export(args: argparse.Namespace) -> None:
    from peerseq.export import export_peer

    rec = export_peer(args.run, args.peer, args.out, args.weights, onnx=args.format == "onnx")
    left = f"; left out: {', '.join(rec['left_out'])}" if rec["left_out"] else ""
    print(f"exported peer '{args.peer}' ({rec['parameters']:,} parameters) to {args.out}{left}")
    if args.evaluate:  # in the same process: scored as `peerseq evaluate` scores an export,
        # on the corpus of the run it came from
        cmd_evaluate(argparse.Namespace(run=args.out, split=args.evaluate, weights="best"))
    else:
        verb = "transcribe" if rec.get("reads") == "speech" else "translate"
        print(
            f"use it: peerseq {verb} {args.out} ...; score it: peerseq evaluate {args.out} "
            "--data PREPARED_CORPUS --split test"
        )


def _run_peer(text: str) -> tuple[str, str]:
    run, sep, peer = text.rpartition(":")
    if not sep or not run or not peer:
        raise argparse.ArgumentTypeError(f"expected RUN_DIR:PEER, got {text!r}")
    return run, peer


def cmd_cascade(args: argparse.Namespace) -> None:
    from peerseq.decoding.outputs import write_outputs
    from peerseq.metrics.score import score
    from peerseq.runs import cascade_split, load_run

    (asr_dir, asr_peer), (mt_dir, mt_peer) = args.asr, args.mt
    asr, mt = load_run(asr_dir, args.weights), load_run(mt_dir, args.weights)
    decoded = cascade_split(asr, asr_peer, mt, mt_peer, args.split, args.beam)
    hyp = Path(args.out) / f"cascade.{args.split}.hyp"
    jsonl = write_outputs(decoded, hyp)
    value, signature = score(decoded.refs, decoded.hyps, "bleu")
    print(f"cascade {args.split} bleu {value:.2f}  ({signature})")
    print(f"wrote {len(decoded.hyps)} translations to {hyp}, with ids and references to {jsonl}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from peerseq.report.tables import print_scores
    from peerseq.runs import evaluate_run, load_run, source_corpus

    data = getattr(args, "data", None) or source_corpus(args.run)  # an export: its run's
    run = load_run(args.run, args.weights, data=data)
    scores = evaluate_run(run, args.split)
    print_scores(scores, title=f"{args.run} ({args.split}, {args.weights} weights)")
    print(f"wrote {RunDir(run.dir).scores(args.split)}")


def cmd_average(args: argparse.Namespace) -> None:
    from peerseq.rundir.checkpoint import average_run

    folder = average_run(args.run, args.last)
    names = json.loads((folder / "from.json").read_text())
    print(f"averaged {len(names)} checkpoints ({', '.join(names)}) into {folder}")


def cmd_demo(args: argparse.Namespace) -> None:
    from peerseq.demo import run_demo

    run_demo(Path(args.workdir))


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def cmd_report(args: argparse.Namespace) -> None:
    from peerseq.report.page import report
    from peerseq.report.recipe import load_recipe

    if RunDir(args.recipe).is_run():  # peerseq report RUN: the run's own page
        from peerseq.report.run_page import run_report

        print(f"wrote {run_report(args.recipe)}")
        return
    missing = [f"--{k}" for k in ("root", "scale", "results") if not getattr(args, k)]
    if missing:
        raise PeerseqError(f"report {args.recipe}: a recipe's page needs {', '.join(missing)}")
    results = Path(args.results)
    report(load_recipe(args.recipe), Path(args.root), args.scale, results, dict(args.set))
    print(f"wrote {results.with_suffix('.md')} and {results.with_suffix('.json')}")
    if args.readme:
        from peerseq.report.readme import sync_verdicts

        sync_verdicts(Path(args.readme), results.with_suffix(".md"))
        print(f"updated the verdict table of {args.readme}")


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        seeds = []
    if not seeds:
        raise argparse.ArgumentTypeError(f'expected seeds like "1 2", got {text!r}')
    return seeds


def cmd_reproduce(args: argparse.Namespace) -> None:
    from peerseq.report.recipe import load_recipe
    from peerseq.report.reproduce import Request, reproduce

    req = Request(
        scale=args.scale,
        seeds=args.seeds,
        methods=args.methods.split() if args.methods else None,
        out=Path(args.out) if args.out else None,
        results=Path(args.results) if args.results else None,
        data=args.data,
        max_steps=args.max_steps,
        test=not args.no_test,
        settings=dict(args.set),
        extra=args.overrides,
        readme=Path(args.readme) if args.readme else None,
    )
    if args.lanes < 1:
        raise PeerseqError(f"--lanes: expected 1 or more processes, got {args.lanes}")
    rec = load_recipe(args.recipe)
    if args.lanes > 1:
        from peerseq.report.lanes import Lanes, lane_overrides, other_lane_argv
        from peerseq.report.reproduce import plan

        req.extra = lane_overrides(req.extra)
        log_dir = plan(rec, req).runs_root  # prepares --data here, before any lane starts
        with Lanes(args.lanes, other_lane_argv(args.argv, req.extra), log_dir):
            done = reproduce(rec, req, train_run)
    else:
        done = reproduce(rec, req, train_run)
    actions = [d["action"] for d in done] + [d["test"] for d in done if d.get("test")]
    print(", ".join(f"{actions.count(a)} {a}" for a in sorted(set(actions))) or "nothing to do")


README_HELP = (
    "also copy the page's verdict table into this README's '<!-- verdicts: PAGE -->' block"
)


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Help that says each option's default, where there is one to say."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peerseq", description=__doc__)
    p.add_argument("--version", action="version", version=f"peerseq {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    add_prepare_command(sub)

    pt = sub.add_parser("train", help="train the peers of a config (any method)")
    pt.add_argument("config", help="experiment YAML (see recipes/)")
    pt.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=3e-4")
    pt.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    pt.set_defaults(func=cmd_train)

    for name, helptext in (("decode", "decode one peer"), ("evaluate", "score every peer")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("run", help="run directory (out_dir of the config)")
        if name == "decode":
            q.add_argument("--peer", required=True, help="the peer to decode")
            q.add_argument("--beam", type=int, help="beam width (default: the peer's decode.beam)")
            q.add_argument("--out", help="hypotheses file (default RUN/decode/PEER.SPLIT.hyp)")
        q.add_argument("--split", default="test", help="split of the corpus")
        q.add_argument("--weights", default="best", choices=WEIGHTS, help="which weights")
        q.add_argument(
            "--data",
            help="another prepared corpus (its tokenizers must be the run's; default: the run's)",
        )
        q.set_defaults(func=cmd_decode if name == "decode" else cmd_evaluate)

    pcas = sub.add_parser("cascade", help="cascade ST: one run's ASR 1-best -> another's MT")
    pcas.add_argument("--asr", type=_run_peer, required=True, help="RUN_DIR:PEER that reads speech")
    pcas.add_argument("--mt", type=_run_peer, required=True, help="RUN_DIR:PEER that reads text")
    pcas.add_argument("--out", required=True, help="directory for cascade.SPLIT.{hyp,jsonl}")
    pcas.add_argument("--split", default="test", help="split of the corpus")
    pcas.add_argument("--beam", type=int, help="MT beam (default: the MT peer's decode.beam)")
    pcas.add_argument("--weights", default="best", choices=WEIGHTS, help="which weights")
    pcas.set_defaults(func=cmd_cascade)

    pe = sub.add_parser("export", help="one peer as a standalone model (training parts dropped)")
    pe.add_argument("run", help="run directory")
    pe.add_argument("--peer", required=True, help="the peer to keep, e.g. seq")
    pe.add_argument("--out", required=True, help="new directory: a one-peer run")
    pe.add_argument("--weights", default="best", choices=WEIGHTS, help="which weights")
    pe.add_argument("--evaluate", metavar="SPLIT", help="then score the export on SPLIT")
    pe.add_argument(
        "--format",
        default="safetensors",
        choices=("safetensors", "onnx"),
        help="onnx: also DIR/model.onnx (CTC speech models; needs peerseq[onnx])",
    )
    pe.set_defaults(func=cmd_export)

    add_use_commands(sub)

    pa = sub.add_parser("average", help="average the last N checkpoints of a run")
    pa.add_argument("run", help="run directory")
    pa.add_argument("--last", type=int, default=5, help="how many of the newest checkpoints")
    pa.set_defaults(func=cmd_average)

    pr = sub.add_parser(
        "report", help="a run's page (RUN/report.html), or a recipe's results page from its runs"
    )
    pr.add_argument(
        "recipe", help="a run directory, or a recipe folder (with recipe.yaml), e.g. recipes/mlkd"
    )
    pr.add_argument("--root", help="a recipe's runs: OUT/SCALE of peerseq reproduce")
    pr.add_argument("--scale", help="tiny, small or paper (names the notes)")
    pr.add_argument("--results", help="stem: writes STEM.md and STEM.json")
    pr.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a page variable of the declaration, e.g. corpus=multi30k-speech",
    )
    pr.add_argument("--readme", help=README_HELP)
    pr.set_defaults(func=cmd_report)

    pq = sub.add_parser(
        "reproduce",
        help="train, decode and report a recipe's runs (recipe.yaml), per seed",
        epilog="Arguments after -- are overrides for every training run, e.g. -- optim.lr=1e-3",
    )
    pq.add_argument("recipe", help="recipe folder (with recipe.yaml), e.g. recipes/mlkd")
    pq.add_argument("--scale", default="small", help="tiny, small or paper (see recipe.yaml)")
    pq.add_argument("--seeds", type=_seeds, default=[1], help='each repeats everything: "1 2"')
    pq.add_argument("--methods", help='a subset of the recipe\'s methods: "mlkd seqkd"')
    pq.add_argument("--out", help="root of the runs (default exp/RECIPE): OUT/SCALE/...")
    pq.add_argument("--results", help="stem of the results page (default: see recipe.yaml)")
    pq.add_argument(
        "--data", help="a prepared corpus, or manifests train=A,dev=B,test=C (prepared into OUT)"
    )
    pq.add_argument("--max-steps", type=int, help="stop every run after N updates (OUT/SCALE-maxN)")
    pq.add_argument("--no-test", action="store_true", help="train only: no decoding, no report")
    pq.add_argument(
        "--lanes", type=int, default=1, metavar="N",
        help="N processes side by side, one thread each unless -- train.num_threads=T; each "
        "trains what the others are not training (lanes 2..N log to OUT/SCALE/lane-K.log)",
    )  # fmt: skip
    pq.add_argument("--readme", help=README_HELP)
    pq.add_argument(
        "--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
        help="a recipe option, e.g. corpus=multi30k-speech, task=mt, pair=en-fr, k=2",
    )  # fmt: skip
    pq.set_defaults(func=cmd_reproduce)

    pd = sub.add_parser(
        "demo",
        help="prepare the bundled corpora, then train and compare E2E and E2E+ML (a few minutes)",
        description="Prepares every bundled corpus and prints their table, then runs paper 000's "
        "recipe at demo size: it trains four models (ASR and MT pre-training, E2E ST, ST<->MT "
        "mutual learning) on 300 synthesised multi30k-speech sentences and prints E2E against "
        "E2E+ML test BLEU beside what chance gets. Demo-size models are far too small to be "
        "useful: the point is the whole path, in minutes.",
    )
    pd.add_argument("--workdir", default="exp/demo", help="where the corpora and runs go")
    pd.set_defaults(func=cmd_demo)
    for parser in sub.choices.values():  # every option's help says its default
        parser.formatter_class = _Defaults
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = []
    if argv[:1] == ["reproduce"] and "--" in argv:  # the rest: overrides for every run
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.overrides = getattr(args, "overrides", None) or overrides
    args.argv = argv  # before `--`: what --lanes starts again
    try:
        args.func(args)
    except PeerseqError as e:
        print(f"peerseq: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no where no check could foresee it
        print(f"peerseq: error: {describe(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
