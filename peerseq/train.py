"""The one training loop, for every method (single process, or DDP under torchrun).

    batches -> peers' outputs -> objective -> update rule -> log -> validate -> checkpoint
A method changes the peers, links and update rule in its config, never this loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from peerseq.build import (
    Data,
    build_links,
    build_optimizer,
    build_peers,
    check_method,
    reads_speech,
)
from peerseq.config import from_dict, save_config
from peerseq.decoding import teacher_labels as pseudo_labels
from peerseq.decoding.peer import decode_peer
from peerseq.distributed import (
    Dist,
    autocast_factory,
    init_distributed,
    is_timeout,
    pick_device,
    shutdown_distributed,
)
from peerseq.engine.objective import objective
from peerseq.engine.peer import Peer, unwrap
from peerseq.engine.update import UPDATE_RULES, Optimisation
from peerseq.errors import PeerseqError, describe
from peerseq.experiment import Experiment
from peerseq.files import atomic_dir, ensure_writable_dir
from peerseq.metrics.score import higher_is_better, score
from peerseq.report.logger import RunLogger
from peerseq.rundir.checkpoint import (
    clean_leftovers,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from peerseq.rundir.layout import RunDir, weights_file
from peerseq.rundir.lock import RunLock
from peerseq.rundir.weights import save_weights


@dataclass
class State:
    """Everything besides weights and optimisers that a resumed run needs (state.json)."""

    step: int = 0
    epoch: int = 0
    micro: int = 0  # batches consumed in the current epoch (a resume skips as many)
    best: float | None = None
    best_step: int | None = None
    bad: int = 0
    done: bool = False
    history: list = field(default_factory=list)  # validation records
    skipped_steps: int = 0  # updates skipped for a non-finite loss or gradient norm
    skipped_streak: int = 0  # ... of them in a row, up to the last step
    metrics_lines: int | None = None  # metrics.jsonl lines written up to this checkpoint

    def __post_init__(self) -> None:
        for name in ("step", "epoch", "micro", "bad", "skipped_steps", "skipped_streak"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.metrics_lines is not None and self.metrics_lines < 0:
            raise ValueError(f"metrics_lines: expected >= 0, got {self.metrics_lines}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """resume: continue from the run directory's newest complete checkpoint (a fresh start if
    it has none). Without it, a directory that holds checkpoints is refused, before any work."""

    def __init__(self, exp: Experiment, resume: bool = False):
        self.exp, t = exp, exp.train
        self.resume_requested = resume
        self.device = pick_device(t.device)
        had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.dist: Dist = init_distributed(self.device, t.collective_timeout)
        self.owns_group = self.dist.world_size > 1 and not had_group  # destroyed after fit
        self.run_dir = Path(exp.out_dir)
        self.layout = RunDir(self.run_dir)
        self.lock = None
        try:
            self.lock = self._claim_run_dir(resume)
            self._build()
        except BaseException:
            self.release()
            if self.owns_group:  # every rank raises here together: no barrier to wait at
                shutdown_distributed(barrier=False)
            raise

    def _claim_run_dir(self, resume: bool) -> RunLock | None:
        """Rank 0 checks the run directory can be written, takes its lock (held until the run
        ends: a second run into it is refused) and removes what crashed saves left; every rank
        learns the outcome."""
        error, lock = None, None
        if self.dist.main:
            try:
                ensure_writable_dir(self.run_dir, "out_dir")
                lock = RunLock(self.run_dir).acquire()
                steps = sorted(self.layout.checkpoints.glob("step-*"))
                if steps and not resume:
                    raise PeerseqError(
                        f"out_dir {self.run_dir}: holds the checkpoints of an earlier run "
                        f"(newest {steps[-1].name}); add --resume to continue it, or train into "
                        "another out_dir (or delete this one) to start over"
                    )
                clean_leftovers(self.run_dir)
            except (PeerseqError, OSError) as e:
                error = describe(e)
                if lock is not None:
                    lock.release()
        error = self.dist.broadcast(error)
        if error:
            raise PeerseqError(error)
        return lock

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _build(self) -> None:
        exp, t = self.exp, self.exp.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self.data = Data(
            exp.data, t.seed, self.dist.world_size, self.dist.rank, speech=reads_speech(exp)
        )
        # seeded after the data, whose preparation (if it had to run) draws random numbers:
        # the same on every rank and in every process, so the initial weights are identical
        seed_everything(t.seed)
        self.peers: dict[str, Peer] = build_peers(exp, self.data)
        self.links = build_links(exp)
        check_method(exp, self.peers)
        self.update = UPDATE_RULES[t.update]
        self._setup_models_and_optimisers()
        self.labels = self._pseudo_labels()
        self.state = State()
        self.log: RunLogger | None = None

    def _setup_models_and_optimisers(self) -> None:
        exp, seen = self.exp, set()
        self.optimizers, self.schedulers, per_step = {}, {}, {}
        for name, peer in self.peers.items():
            peer.model.to(self.device)
            if not peer.trainable:
                peer.model.eval().requires_grad_(False)
                continue
            # a parameter shared with an earlier peer belongs to that peer's optimiser only
            params = [p for p in peer.model.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            if params:
                cfg = exp.peers[name].optim or exp.optim
                opt, sched = build_optimizer(params, cfg)
                if cfg.schedule == "epoch_decay":
                    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.decay)
                else:
                    per_step[name] = sched
                self.optimizers[name], self.schedulers[name] = opt, sched
        self.per_epoch = [n for n in self.schedulers if n not in per_step]
        if self.dist.world_size > 1:
            for peer in self.peers.values():
                if peer.trainable:  # each peer its own DDP: alternating updates stay possible
                    peer.model = DistributedDataParallel(peer.model, find_unused_parameters=True)
        t = exp.train
        self.opt = Optimisation(
            self.optimizers,
            per_step,
            t.clip_norm,
            t.accum_steps,
            autocast_factory(self.device, t.bf16),
            agree=lambda bad: self.dist.any(bad, self.device),
        )

    def _pseudo_labels(self) -> dict[str, dict]:
        """Cached transcripts of frozen teachers (decoded once): for seqkd links (k-best, CTC
        prefix beam search or beam search) and for students trained on a teacher's hypotheses
        (`train_on_hyps_of`: beam search 1-best with the teacher's own decode settings)."""
        wanted = {
            lc.a: (lc.k, None)
            for lc in self.exp.links
            if lc.kind == "seqkd" and lc.cache and not self.peers[lc.a].trainable
        }
        for pc in self.exp.peers.values():
            if pc.train_on_hyps_of:
                wanted[pc.train_on_hyps_of] = (1, self.exp.peers[pc.train_on_hyps_of].decode)
        out = {}
        folder = Path(self.exp.train.pseudo_labels_dir or self.layout.pseudo_labels)
        for teacher, (k, cfg) in wanted.items():
            batches = self.data.batches(self.exp.data.train_split, self.exp.data.limit_train)
            out[teacher] = pseudo_labels.teacher_labels(
                self.peers[teacher], batches, self.device, folder, k, cfg
            )
        return out

    def models(self) -> dict:
        return {n: unwrap(p.model) for n, p in self.peers.items()}

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self) -> None:
        """Rank 0 writes the checkpoint; every rank learns whether it could (a full disk stops
        all of them at once, not one while the others wait for it)."""
        error = None
        if self.dist.main:
            self.state.metrics_lines = self.log.lines if self.log is not None else None
            try:
                save_checkpoint(
                    self.run_dir,
                    self.state.step,
                    self.models(),
                    self.optimizers,
                    self.schedulers,
                    self.state.__dict__,
                    keep_last=self.exp.train.keep_last,
                )
            except OSError as e:  # full disk, read-only: the last complete checkpoint is intact
                last = latest_checkpoint(self.run_dir)
                error = (
                    f"{e.filename or self.run_dir}: {e.strerror or e} while saving step "
                    f"{self.state.step}; the newest complete checkpoint, {last or 'none'}, is "
                    "intact: free space and continue with --resume"
                )
            except PeerseqError as e:
                error = str(e)
        error = self.dist.broadcast(error)  # also the barrier
        if error:
            raise PeerseqError(error)

    def resume(self) -> bool:
        ckpt = latest_checkpoint(self.run_dir, strict=True)
        if ckpt is None:
            return False
        extra = load_checkpoint(ckpt, self.models(), self.optimizers, self.schedulers)
        source = str(ckpt / "state.json")
        self.state = from_dict(State, extra, source=source)
        if self.state.step != int(ckpt.name.split("-")[1]):
            raise PeerseqError(f"{source}: step {self.state.step}, expected {ckpt.name}'s step")
        return True

    def _check_finite_weights(self) -> None:
        """Non-finite weights are never validated, saved as best or checkpointed (every rank
        checks its own copy, so all stop together)."""
        bad = [
            name
            for name, model in self.models().items()
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters())
        ]
        if bad:
            raise PeerseqError(
                f"step {self.state.step}: the weights of {', '.join(bad)} are not finite; not "
                f"saved. The last good checkpoint is {latest_checkpoint(self.run_dir) or 'none'}"
            )

    # ---- validation --------------------------------------------------------------------------
    def validate(self, log: RunLogger) -> dict[str, float]:
        """Rank 0 validates (and keeps the best weights) while the others wait; every rank
        learns whether to stop, and any error rank 0 met (they all stop with it)."""
        record, error = {}, None
        if self.dist.main:
            try:
                record = self._validate_here(log)
            except (PeerseqError, OSError) as e:
                error = describe(e)
        done, error = self.dist.broadcast((self.state.done, error))
        self.state.done = done
        if error:
            raise PeerseqError(error)
        return record

    @torch.no_grad()
    def _validate_here(self, log: RunLogger) -> dict[str, float]:
        exp, data = self.exp, self.data
        for p in self.peers.values():
            unwrap(p.model).eval()
        # the plain models, not their DDP wrappers: only this rank validates, and a DDP
        # forward could start a collective (buffer broadcast) the other ranks never join
        peers = {n: dataclasses.replace(p, model=unwrap(p.model)) for n, p in self.peers.items()}
        sums, n = {}, 0
        for batch in data.batches(exp.data.dev_split, exp.data.limit_dev):
            # no cached teacher labels on dev: a seqkd link decodes the teacher online
            batch = batch.to(self.device)
            outs = {}
            for name, p in peers.items():
                outs[name] = p.forward(batch, outs)
            for k, v in objective(peers, self.links, outs, batch, self.state.step).items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(batch)
            n += len(batch)
        record = {k: v / max(n, 1) for k, v in sums.items() if not k.startswith("w:")}
        for name, peer in peers.items():
            metric = exp.peers[name].decode.metric
            if metric == "none" or peer.upstream or peer.predicts not in data.tokenizers:
                continue
            column = exp.data.fields[peer.predicts].column
            decoded = decode_peer(
                peer,
                data.batches(exp.data.dev_split, exp.data.limit_dev),
                data.tokenizers[peer.predicts],
                column,
                exp.peers[name].decode,
                self.device,
            )
            record[f"{name}/{metric}"] = score(decoded.refs, decoded.hyps, metric)[0]
        for p in self.peers.values():
            unwrap(p.model).train(p.trainable)
        log.record("dev", self.state.step, record, self.state.epoch)
        log.say("dev " + " ".join(f"{k} {v:.3f}" for k, v in record.items()))
        self._early_stopping(record)
        return record

    def _early_stopping(self, record: dict[str, float]) -> None:
        s, t = self.state, self.exp.train
        name = t.early_stop_peer
        if name is None:
            return
        metric = self.exp.peers[name].decode.metric
        value = record[f"{name}/{metric}"]
        better = math.isfinite(value) and (
            s.best is None or (value > s.best if higher_is_better(metric) else value < s.best)
        )
        s.history.append({"step": s.step, f"{name}/{metric}": value})
        if better:
            s.best, s.best_step, s.bad = value, s.step, 0
            # written beside and renamed: best/ never mixes the weights of two steps
            with atomic_dir(self.layout.best) as tmp:
                for peer, model in self.models().items():
                    save_weights(weights_file(tmp, peer), model.state_dict())
                (tmp / "best.json").write_text(
                    json.dumps({"step": s.step, "peer": name, "metric": metric, "value": value})
                )
        else:
            s.bad += 1
            if t.patience is not None and s.bad >= t.patience:
                s.done = True

    def _validate_and_save(self, log: RunLogger) -> None:
        """Validate and checkpoint, once per step: an epoch that ends on a validation step
        is not validated twice (its checkpoint then replays the epoch end on resume)."""
        if self._saved_step == self.state.step:
            return
        self._check_finite_weights()
        self.validate(log)
        self.save()
        self._saved_step = self.state.step

    # ---- the loop ----------------------------------------------------------------------------
    def _attach(self, batch):
        for teacher, labels in self.labels.items():
            batch = pseudo_labels.attach(batch, teacher, labels)
        return batch

    def fit(self, resume: bool | None = None) -> State:
        """Train to the end; the run directory's lock is released however this ends."""
        try:
            return self._fit(self.resume_requested if resume is None else resume)
        except BaseException as e:
            if self.owns_group and not is_timeout(e):  # a peer that stopped answering would
                self._leave_group(barrier=False)  # make the teardown wait for it
            raise
        finally:
            if self.log is not None:
                self.log.close()
            self.release()

    def _leave_group(self, barrier: bool) -> None:
        for peer in self.peers.values():  # the DDP wrappers hold the process group
            peer.model = unwrap(peer.model)
        shutdown_distributed(barrier)
        self.owns_group = False

    def _fit(self, resume: bool) -> State:
        exp, t, s = self.exp, self.exp.train, self.state
        resumed = resume and self.resume()
        if resumed:
            s = self.state
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(exp, self.layout.config)
        keep = s.metrics_lines if resumed else 0
        log = self.log = RunLogger(self.run_dir, self.dist.main, t.max_steps, keep, s.step, s.epoch)
        self._saved_step = s.step if resumed else None
        if resumed:
            log.say(f"resuming at step {s.step}, epoch {s.epoch}" + (" (finished)" * s.done))
        collate = self.data.collator(training=True)
        while not s.done and s.epoch < t.max_epochs:
            sampler = self.data.sampler(exp.data.train_split, True, exp.data.limit_train)
            sampler.set_epoch(s.epoch)
            batches = iter(sampler)
            # Resuming mid-epoch: the sampler is deterministic for (seed, epoch), so skipping
            # the batches already consumed (metadata only, nothing is loaded) lands on the same
            # next batch. lhotse's own sampler state_dict() refuses token-constrained samplers.
            for i in range(s.micro):
                if next(batches, None) is None:
                    raise PeerseqError(
                        f"state.json of step {s.step}: micro {s.micro}, but epoch {s.epoch} "
                        f"has only {i} batches (edited by hand, or other data?)"
                    )
            for items in _continue(batches):
                batch = self._attach(collate(items)).to(self.device)
                s.micro += 1
                step_now = s.micro % t.accum_steps == 0
                terms = self.update(self.peers, self.links, batch, s.step + 1, self.opt, step_now)
                if not step_now:
                    continue
                s.step += 1
                log.utts += len(batch)
                self._count_skipped(log)
                if s.step % t.log_every == 0:
                    log.record("train", s.step, terms, s.epoch)
                    log.progress(s.step, s.epoch, _shown(terms), 0)
                stop = s.done or bool(t.max_steps and s.step >= t.max_steps)
                if stop or (t.valid_every and s.step % t.valid_every == 0):
                    self._validate_and_save(log)
                if stop or s.done:
                    s.done = True
                    break
            else:  # the epoch ran to its end
                for opt in self.optimizers.values():  # an unfinished accumulation is dropped:
                    opt.zero_grad(set_to_none=True)  # a resumed run could not have it
                self.opt.pending.clear()
                self.opt.bad_loss = False
                for name in self.per_epoch:  # per-epoch LR decay (paper 003: x0.95)
                    self.schedulers[name].step()
                s.epoch, s.micro = s.epoch + 1, 0
                log.record("epoch", s.step, {}, s.epoch)  # updates per epoch, for schedules
                s.done = s.done or s.epoch >= t.max_epochs
                self._validate_and_save(log)
        if self.dist.world_size > 1:
            self._write_rank_checksums()
            if self.owns_group:
                self._leave_group(barrier=True)
        return s

    def _count_skipped(self, log: RunLogger) -> None:
        """A step whose update was skipped (non-finite loss or gradient norm) is counted, said
        and logged; train.max_bad_steps of them in a row stop the run (every rank decides the
        same: the skip decision itself is agreed across ranks)."""
        s, t = self.state, self.exp.train
        skipped = self.opt.take_skipped()
        if not skipped:
            s.skipped_streak = 0
            return
        s.skipped_steps += 1
        s.skipped_streak += 1
        peers = ", ".join(sorted(set(skipped)))
        log.record("skip", s.step, {"skipped_steps": s.skipped_steps}, s.epoch)
        log.say(
            f"step {s.step}: non-finite loss or gradient norm ({peers}): update skipped "
            f"({s.skipped_streak} in a row, {s.skipped_steps} in all)"
        )
        if s.skipped_streak >= t.max_bad_steps:
            last = latest_checkpoint(self.run_dir)
            raise PeerseqError(
                f"step {s.step}: {s.skipped_streak} steps in a row had a non-finite loss or "
                f"gradient norm ({peers}; train.max_bad_steps={t.max_bad_steps}): stopped. The "
                f"last good checkpoint is {last or 'none (no checkpoint yet)'}, kept; lower "
                "optim.lr or set train.clip_norm, then continue with --resume"
            )

    def _write_rank_checksums(self) -> None:
        """Every rank's checksums of its trainable peers' parameters -> run_dir/ddp_ranks.json
        (written by rank 0): under DDP they must be identical."""
        mine = {name: _checksum(unwrap(p.model)) for name, p in self.peers.items() if p.trainable}
        gathered: list = [None] * self.dist.world_size
        torch.distributed.all_gather_object(gathered, mine)
        if self.dist.main:
            self.layout.ddp_ranks.write_text(
                json.dumps({"world_size": self.dist.world_size, "checksums": gathered}, indent=1)
            )
        self.dist.barrier()


def _checksum(model: torch.nn.Module) -> dict:
    """float64 sum and sum of squares of the parameters, and a sha256 of their bytes."""
    h, total, squares = hashlib.sha256(), 0.0, 0.0
    for name, p in model.named_parameters():
        x = p.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
        total += float(x.double().sum())
        squares += float(x.double().square().sum())
    return {"sum": total, "sum_sq": squares, "sha256": h.hexdigest()}


def _continue(it):
    """Yield what is left of an iterator. `for x in sampler_iterator` would not do: a lhotse
    sampler's __iter__ starts the epoch again."""
    while True:
        try:
            yield next(it)
        except StopIteration:
            return


def _shown(terms: dict[str, float]) -> dict[str, float]:
    """What the progress line shows: losses and schedule weights, not every sub-total."""
    return {k: v for k, v in terms.items() if not k.endswith(":total")}


def train(exp: Experiment, resume: bool = False) -> State:
    try:
        return Trainer(exp, resume).fit()
    except RuntimeError as e:
        if not is_timeout(e):
            raise
        raise PeerseqError(
            f"rank {os.environ.get('RANK', '0')}: a collective operation timed out after "
            f"train.collective_timeout={exp.train.collective_timeout:g} s: another rank stopped, "
            "crashed or is far slower (validation runs on rank 0 alone: raise the setting if it "
            f"takes longer) ({str(e).splitlines()[0][:200]})"
        ) from None
