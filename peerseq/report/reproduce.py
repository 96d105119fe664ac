"""`peerseq reproduce RECIPE`: train a recipe's runs for every seed, teachers before their
students, decode (or export and decode) each one on the test split, then write its results page,
as the `reproduce:` and `runs:` sections of its recipe.yaml declare.

Finished runs are reused (training resumes and returns at once), a student whose teacher's
weights are newer than its own run is trained again from scratch, test decoding is redone only
when a run's weights are newer than it, and runs stopped by --max-steps go to OUT/SCALE-maxN.
Override values are $-templates ($root, $seed, $size, $scale, $out, $shared_root and the
recipe's options), so that YAML braces in them stay literal. A run declared `shared: true` (a
pre-trained teacher every seed learns from) is trained once, in the folder of the seed
`reproduce.shared_seed` (default 1), which $shared_root names.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from peerseq.errors import PeerseqError
from peerseq.report.after_training import after_training, cascade, newer
from peerseq.report.committed_logs import decoded_on_test, keep_logs
from peerseq.report.recipe import Recipe
from peerseq.rundir.layout import RunDir
from peerseq.rundir.lock import RunBusy, RunLock

TrainFn = Callable[[Path, list[str]], object]


@dataclass
class Request:
    """What the command line asked for."""

    scale: str = "small"
    seeds: list[int] = field(default_factory=lambda: [1])
    methods: list[str] | None = None
    out: Path | None = None
    results: Path | None = None
    data: str | None = None
    max_steps: int | None = None
    test: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    readme: Path | None = None  # its verdict block for the page is rewritten (report/readme.py)


class _Vars(dict):
    """Template values; $epoch_steps_RUN reads the updates of RUN's first epoch in this seed's
    folder, or in the shared seed's for a run every seed shares (`shared`: their folders)."""

    shared: frozenset[str] = frozenset()

    def __missing__(self, key: str) -> str:
        if key.startswith("epoch_steps_"):
            name = key[len("epoch_steps_") :]
            folder = self["shared_root"] if name in self.shared else self["root"]
            path = RunDir(Path(folder) / name).metrics
            ends = [r["step"] for r in _records(path) if r["split"] == "epoch"]
            if not ends:
                raise PeerseqError(
                    f"{path}: no epoch finished, so a cycle of one epoch cannot be measured; "
                    "train longer or give the value as an override after --"
                )
            return str(ends[0])
        raise KeyError(key)


def _records(path: Path) -> list[dict]:
    from peerseq.rundir.log import read_metrics

    return read_metrics(path) if path.is_file() else []


def _holds(when: dict, values: dict) -> bool:
    return all(str(values.get(k)) in [str(x) for x in (v if isinstance(v, list) else [v])]
               for k, v in when.items())  # fmt: skip


def _sub(text: str, values: dict, rounds: int = 3) -> str:
    """$-substitution, again while a value brought in another $name (at most `rounds`)."""
    out = str(text)
    try:
        for _ in range(rounds):
            new = Template(out).substitute(values)
            if new == out or "$" not in new:
                return new
            out = new
    except KeyError as e:
        raise PeerseqError(f"no value for ${e.args[0]} in '{text}'") from None
    return out


def _sets(items: list, values: dict) -> list[str]:
    """Overrides from a declared list: strings, nested lists (YAML aliases) and {when, set}
    blocks that apply when their conditions hold."""
    out = []
    for x in items:
        if isinstance(x, list):
            out += _sets(x, values)
        elif isinstance(x, dict):
            if _holds(x.get("when", {}), values):
                out += _sets(x["set"], values)
        else:
            out.append(_sub(x, values))
    return out


def settings_of(rec: Recipe, req: Request) -> dict:
    """The recipe's options with the request's settings, checked -> template values."""
    spec = rec.data["reproduce"]
    opts = spec.get("options", {})
    values = {k: str(o.get("default", "")) for k, o in opts.items()}
    for k, v in req.settings.items():
        if k not in opts:
            raise PeerseqError(f"--set {k}: not an option of {rec.file} ({', '.join(opts)})")
        values[k] = v
    for k, o in opts.items():
        if "choices" in o and values[k] not in o["choices"]:
            raise PeerseqError(
                f"--set {k}: expected one of {', '.join(o['choices'])}, got '{values[k]}'"
            )
        if "pattern" in o and not re.fullmatch(o["pattern"], values[k]):
            raise PeerseqError(
                f"--set {k}: expected {o.get('means', o['pattern'])}, got '{values[k]}'"
            )
    if req.scale not in spec["scales"]:
        raise PeerseqError(f"--scale: expected {', '.join(spec['scales'])}, got '{req.scale}'")
    values = _Vars(values | {"scale": req.scale, "size": req.scale, "out": str(req.out)})
    for block in spec.get("vars", []):
        if _holds(block.get("when", {}), values):
            values.update({k: _sub(v, values, rounds=1) for k, v in block["set"].items()})
    return values


def _shown(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if k in ("task", "scale") and v)


def plan_runs(rec: Recipe, req: Request, values: dict) -> list[str]:
    """The runs to train, in declaration order: the requested methods' runs (default: the
    recipe's default methods) and every run they come after."""
    spec, runs = rec.data["reproduce"], rec.data["runs"]
    methods = spec["methods"]
    asked = req.methods or spec.get("default_methods", list(methods))
    alone = (spec.get("sweep") or {}).get("method")  # the sweep's points without their base
    for m in asked:
        if m == alone:
            base = runs[spec["sweep"]["base"]]
            if not _holds(base.get("when", {}), values):
                raise PeerseqError(
                    f"--methods: '{m}' has no run with these options ({_shown(values)})"
                )
            continue
        if m not in methods:
            known = " ".join([*methods, *([alone] if alone else [])])
            raise PeerseqError(f"--methods: unknown '{m}' ({known})")
        if req.methods and not any(_holds(runs[r].get("when", {}), values) for r in methods[m]):
            raise PeerseqError(f"--methods: '{m}' has no run with these options ({_shown(values)})")
    need: set[str] = set()
    todo = [r for m in asked if m != alone for r in methods[m]]
    while todo:
        r = todo.pop()
        if r in runs and _holds(runs[r].get("when", {}), values) and r not in need:
            need.add(r)
            todo += runs[r].get("after", [])
    return [r for r in runs if r in need]


def _train(train: TrainFn, config: Path, overrides: list[str], run: Path) -> str:
    """Train (or resume) one run -> "trained", or "reused" when its weights did not change."""
    before = RunDir(run).last_weights_written()
    stamp = before.stat().st_mtime_ns if before else None
    train(config, overrides)
    after = RunDir(run).last_weights_written()
    return "reused" if after and after.stat().st_mtime_ns == stamp else "trained"


def _prepare(rec: Recipe, req: Request, values: dict) -> list[str]:
    """Data and step-limit overrides for every run; manifests are prepared once into OUT."""
    spec = rec.data["reproduce"]
    sets = _sets(spec.get("overrides", []), values)
    for need in spec.get("needs_data", []):
        if _holds(need["when"], values) and not req.data:
            raise PeerseqError(f"--scale {req.scale} needs --data ({need['what']})")
    if req.data:
        data = req.data
        if Path(data).is_file() or "=" in data:
            from peerseq.data.prepare import PrepareArgs, prepare

            prepared = req.out / _sub(spec.get("data_dir", "data-$scale"), values)
            prepare(PrepareArgs(name=data, out=prepared, split="train"))
            data = str(prepared)
        sets += [f"data.corpus={data}", "data.prepare={}"]
    if req.max_steps:
        sets.append(f"train.max_steps={req.max_steps}")
    return sets


@dataclass
class Plan:
    """The runs of a request, in training order, and what every one of them is given."""

    rec: Recipe
    req: Request
    values: dict
    runs_root: Path
    common: list[str]
    todo: list[str]
    logs_root: Path | None = None  # the recipe's committed copy of the runs' small files

    def root(self, seed: int) -> Path:
        return self.runs_root / _sub(
            self.rec.data["reproduce"]["layout"], self.values | {"seed": seed}
        )

    @property
    def shared_seed(self) -> int:
        """The seed whose folder holds the runs every seed shares (`shared: true`)."""
        return self.rec.shared_seed

    def root_of(self, name: str, seed: int) -> Path:
        """The seed folder a run of this seed is in: the shared seed's for a shared run."""
        return self.root(self.shared_seed if self.run(name).get("shared") else seed)

    def order(self, seeds: list[int]) -> list[tuple[int, str]]:
        """(seed, run) in training order: the shared runs once (with the shared seed), then
        every other run for each seed."""
        shared = [(self.shared_seed, n) for n in self.todo if self.run(n).get("shared")]
        return shared + [(s, n) for s in seeds for n in self.todo if not self.run(n).get("shared")]

    def prerequisites(self) -> set[str]:
        """Runs other runs of the plan build on: the shared ones, and every run's `after` and
        `teachers`."""
        runs = {n: self.run(n) for n in self.todo}
        built_on = {a for r in runs.values() for a in r.get("after", []) + r.get("teachers", [])}
        return built_on | {n for n, r in runs.items() if r.get("shared")}

    def run(self, name: str) -> dict:
        return self.rec.data["runs"].get(name) or self.values["_sweep"][name]

    def args(self, name: str, seed: int) -> tuple[Path, Path, list[str]]:
        """(run directory, config file, overrides) of one run of one seed."""
        root, r = self.root_of(name, seed), self.run(name)
        run = root / r.get("dir", name)
        shared = str(self.root(self.shared_seed))
        v = _Vars(self.values | {"seed": str(seed), "root": str(root), "shared_root": shared})
        v.shared = frozenset(
            r.get("dir", n) for n, r in self.rec.data["runs"].items() if r.get("shared")
        )
        overrides = self.common + [f"out_dir={run}", f"train.seed={seed}"]
        overrides += _sets(self.rec.data["reproduce"].get("train_set", []) + r.get("set", []), v)
        return run, self.rec.dir / f"{r['config']}.yaml", overrides + self.req.extra


def plan(rec: Recipe, req: Request) -> Plan:
    """Check the request against the declaration and lay out its runs (nothing is trained)."""
    spec = rec.data["reproduce"]
    req.out = Path(req.out or spec.get("default_out", f"exp/{rec.data['name']}"))
    values = settings_of(rec, req)
    runs_root = req.out / (req.scale + (f"-max{req.max_steps}" if req.max_steps else ""))
    values["runs"] = str(runs_root)
    common = _prepare(rec, req, values)
    todo = plan_runs(rec, req, values)
    todo += _sweep_runs(rec, values, todo, req.methods or [])
    # the runs' small files are kept in the recipe only for the page the recipe keeps
    logs, kept = spec.get("logs"), _default_results(rec, req, values) == rec.dir / "results"
    logs_root = rec.dir / _sub(logs, values) if logs and kept and not req.results else None
    return Plan(rec, req, values, runs_root, common, todo, logs_root)


def reproduce(rec: Recipe, req: Request, train: TrainFn) -> list[dict]:
    """Train, decode and report; -> one record per run and seed: what was done to it
    "action" trained or reused (a cascade: decoded or reused), "test" evaluated, exported or
    None (up to date), also appended to RUNS/reproduce.jsonl.
    train(config, overrides): trains or resumes one run (`peerseq train CONFIG ... --resume`;
    the CLI passes peerseq.cli.train_run)."""
    p = plan(rec, req)
    spec = rec.data["reproduce"]
    if req.readme and not req.readme.is_file():  # say so before hours of training, not after
        raise PeerseqError(f"--readme {req.readme}: no such file")
    done, order, later = [], p.order(req.seeds), set()
    needed = p.prerequisites()
    while order:
        seed, name = order.pop(0)
        r = p.run(name)
        if r.get("kind") == "cascade":
            if req.test:
                action = cascade(p.root(seed), r) or "reused"
                done.append({"seed": seed, "run": name, "action": action})
            continue
        run, config, overrides = p.args(name, seed)
        for t in r.get("teachers", []):
            teacher = p.root_of(t, seed) / rec.data["runs"][t].get("dir", t)
            w = RunDir(teacher).last_weights_written()
            config_file = RunDir(run).config
            if config_file.is_file() and w and newer(w, config_file):
                print(f"== {run}: its teacher {t} was retrained since; training it again")
                shutil.rmtree(run)
        # A run another command (a second lane) is training: the others first, then this one,
        # waiting for it (usually to find it finished). A run others here build on (pre-training,
        # a teacher) is waited for at once. Taken, not looked at, so that two commands started
        # together cannot both find a run free. The Trainer borrows this process's lock.
        lock = RunLock(run, wait=name in needed or (seed, name) in later)
        try:
            lock.acquire()
        except RunBusy:
            print(f"== {run.name} (seed {seed}): another command is training it; back to it last")
            later.add((seed, name))
            order.append((seed, name))
            continue
        print(f"== {run.name} (seed {seed}): {run}")
        start = time.perf_counter()
        try:
            action, test = _train(train, config, overrides, run), None
            if req.test:
                test = after_training(spec.get("after_training", "evaluate"), run, spec)
        finally:
            lock.release()
        seconds = round(time.perf_counter() - start, 1)
        done.append({"seed": seed, "run": name, "action": action, "test": test, "seconds": seconds})
    p.runs_root.mkdir(parents=True, exist_ok=True)
    with open(p.runs_root / "reproduce.jsonl", "a") as f:
        f.writelines(json.dumps(d) + "\n" for d in done)
    if req.test:
        from peerseq.report.page import report

        results = req.results or _default_results(rec, req, p.values)
        page = {k: p.values[k] for k in spec.get("report_settings", [])}
        if p.logs_root:  # a page on the runs first: what it computes from weights is kept too
            report(rec, p.runs_root, req.scale, p.runs_root / "results-runs", page)
            for seed in sorted({*req.seeds, p.shared_seed}):
                for run in sorted(p.root(seed).glob("*")):
                    if decoded_on_test(run):
                        keep_logs(run, p.logs_root / run.relative_to(p.runs_root))
        report(rec, p.logs_root or p.runs_root, req.scale, results, page)
        print(f"wrote {results.with_suffix('.md')} and {results.with_suffix('.json')}")
        if req.readme:
            from peerseq.report.readme import sync_verdicts

            sync_verdicts(req.readme, results.with_suffix(".md"))
            print(f"updated the verdict table of {req.readme}")
    return done


def _default_results(rec: Recipe, req: Request, values: dict) -> Path:
    spec = rec.data["reproduce"]
    if not req.max_steps and _holds(spec.get("recipe_results_when", {"scale": "small"}), values):
        return rec.dir / "results"
    return Path(_sub(spec.get("results", "$runs/results"), values))


def _sweep_runs(rec: Recipe, values: dict, todo: list[str], asked: list[str]) -> list[str]:
    """Runs of a hyper-parameter sweep (option `sweep`: words NAME=VALUE), beside `base`, or
    alone when its `method` is asked (a machine that has not the base's run need not train it).
    With `set` (e.g. a shorter budget than the table's), every point gets those overrides too,
    and the point at the base's own values is trained again as the run `shared`."""
    sweep = rec.data["reproduce"].get("sweep")
    values["_sweep"] = {}
    if not sweep or (sweep["base"] not in todo and sweep.get("method") not in asked):
        return []
    base, names = rec.data["runs"][sweep["base"]], []
    common = base.get("set", []) + sweep.get("set", [])  # every point's, the shared one's too
    words = [w for w in values.get(sweep["option"], "").split() if w != "none"]
    if not words and sweep.get("method") in asked:
        raise PeerseqError(
            f"--methods {sweep['method']}: no points to train (--set {sweep['option']}="
            f"'NAME=VALUE ...', names: {' '.join(sweep['points'])})"
        )
    if words and sweep.get("shared"):
        names.append(sweep["shared"])
        values["_sweep"][sweep["shared"]] = base | {"dir": sweep["shared"], "set": common}
    for word in words:
        key, _, value = word.partition("=")
        if key not in sweep["points"] or not value:
            raise PeerseqError(
                f"--set {sweep['option']}: expected {'|'.join(sweep['points'])}=VALUE, got '{word}'"
            )
        point = sweep["points"][key]
        name = _sub(point["dir"], {"value": value})
        values["_sweep"][name] = base | {
            "dir": name,
            "set": common + [_sub(x, {"value": value}) for x in point["set"]],
        }
        names.append(name)
    return names
