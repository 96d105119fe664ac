"""The one training loop, for every method (single process, or DDP under torchrun).

    batches -> peers' outputs -> objective -> update rule -> log -> validate -> checkpoint
A method changes the peers, links and update rule in its config, never this loop.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

import peerseq.training_console as console
from peerseq.build import build_links, build_peers, check_method, reads_speech
from peerseq.config import save_config
from peerseq.data.loader import epoch_batches
from peerseq.data.pipeline import Data
from peerseq.data.prepare import prepare_corpus
from peerseq.decoding import teacher_labels as pseudo_labels
from peerseq.distributed import (
    Dist,
    autocast_factory,
    checksum,
    init_distributed,
    is_timeout,
    pick_device,
    shutdown_distributed,
)
from peerseq.engine.optim import build_optimisation
from peerseq.engine.peer import Peer, unwrap
from peerseq.engine.update import UPDATE_RULES
from peerseq.errors import PeerseqError, describe
from peerseq.experiment import Experiment
from peerseq.files import ensure_writable_dir
from peerseq.losses.ctc import tally_infeasible
from peerseq.run_state import (
    SaveClock,
    State,
    check_run_dir,
    load_state,
    non_finite,
    save_state,
    seed_everything,
)
from peerseq.rundir.checkpoint import clean_leftovers, is_interim, latest_checkpoint
from peerseq.rundir.layout import RunDir
from peerseq.rundir.lock import RunLock
from peerseq.rundir.log import RunLogger
from peerseq.validation import dev_record, early_stopping


class Trainer:
    """One run of an experiment: claims its run directory, prepares the data, builds the peers,
    links and optimisers, then `fit()` trains them with the configured update rule, validating
    and checkpointing as the config says (rank 0 writes; under torchrun every rank trains its
    shard of each batch).

    resume: continue from the run directory's newest complete checkpoint (a fresh start if it
    has none). Without it, a directory that holds checkpoints is refused, before any work."""

    def __init__(self, exp: Experiment, resume: bool = False):
        self.exp, cfg = exp, exp.train
        self.resume_requested = resume
        self.device = pick_device(cfg.device)
        had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.dist: Dist = init_distributed(self.device, cfg.collective_timeout)
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
                check_run_dir(self.exp, self.layout, resume)
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
        exp, cfg = self.exp, self.exp.train
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self._prepare_data()
        self.data = Data(
            exp.data, cfg.seed, self.dist.world_size, self.dist.rank, speech=reads_speech(exp)
        )
        # seeded after the preparation, which draws random numbers when it runs: the same seed
        # on every rank and in every process, so the initial weights are identical
        seed_everything(cfg.seed)
        self.peers: dict[str, Peer] = build_peers(exp, self.data)
        self.links = build_links(exp)
        check_method(exp, self.peers)
        self.update = UPDATE_RULES[cfg.update]
        self._setup_models_and_optimisers()
        self.labels = self._pseudo_labels()
        self.state = State()
        self.log: RunLogger | None = None

    def _prepare_data(self) -> None:
        """The run's preparation step: rank 0 makes data.corpus from data.prepare if it is not
        prepared yet, while the others wait; every rank learns the outcome."""
        error, failure = None, None
        if self.dist.main:
            try:
                prepare_corpus(self.exp.data)
            except Exception as e:  # any failure: the other ranks must not wait for rank 0
                failure, error = (
                    e,
                    describe(e)
                    if isinstance(e, (PeerseqError, OSError))
                    else (f"rank 0 could not prepare data.corpus: {type(e).__name__}: {e}"),
                )
        error = self.dist.broadcast(error)
        if failure is not None and not isinstance(failure, (PeerseqError, OSError)):
            raise failure  # rank 0 keeps the traceback of an unexpected error
        if error:
            raise PeerseqError(error)

    def _setup_models_and_optimisers(self) -> None:
        exp, cfg = self.exp, self.exp.train
        for peer in self.peers.values():
            peer.model.to(self.device)
        self.opt = build_optimisation(
            self.peers,
            {name: peer_cfg.optim or exp.optim for name, peer_cfg in exp.peers.items()},
            cfg.clip_norm,
            cfg.accum_steps,
            autocast_factory(self.device, cfg.bf16),
            agree=lambda bad: self.dist.any(bad, self.device),
        )
        self.optimisers, self.schedulers = self.opt.optimisers, self.opt.schedulers
        if self.dist.world_size > 1:
            for peer in self.peers.values():
                if peer.trainable:  # each peer its own DDP: alternating updates stay possible
                    peer.model = DistributedDataParallel(peer.model, find_unused_parameters=True)

    def _pseudo_labels(self) -> dict[str, dict]:
        """Frozen teachers' cached hypotheses of the training split (decoded once)."""
        folder = Path(self.exp.train.pseudo_labels_dir or self.layout.pseudo_labels)
        return {
            teacher: pseudo_labels.teacher_labels(
                self.peers[teacher],
                self.data.batches(self.exp.data.train_split),
                self.device,
                folder,
                k,
                decode,
            )
            for teacher, (k, decode) in pseudo_labels.wanted(self.exp, self.peers).items()
        }

    def models(self) -> dict:
        return {n: unwrap(p.model) for n, p in self.peers.items()}

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, interim: bool = False) -> None:
        """Rank 0 writes the checkpoint (interim: between validations); every rank learns
        whether it could (a full disk stops all of them at once, not one while the others wait
        for it)."""
        error = None
        if self.dist.main:
            self.state.metrics_lines = self.log.lines if self.log is not None else None
            error = save_state(
                self.run_dir,
                self.state,
                self.models(),
                self.optimisers,
                self.schedulers,
                self.exp.train.keep_last,
                interim,
            )
        error = self.dist.broadcast(error)  # also the barrier
        if error:
            raise PeerseqError(error)

    def resume(self) -> bool:
        state = load_state(self.run_dir, self.models(), self.optimisers, self.schedulers)
        if state is not None:
            self.state = state
        return state is not None

    def _check_finite_weights(self) -> None:
        """Non-finite weights are never validated, saved as best or checkpointed (every rank
        checks its own copy, so all stop together)."""
        bad = non_finite(self.models())
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

    def _validate_here(self, log: RunLogger) -> dict[str, float]:
        started = time.perf_counter()
        record = dev_record(
            self.exp, self.data, self.peers, self.links, self.state.step, self.device
        )
        took = log.validated(time.perf_counter() - started)  # what validating costs a run
        log.record("dev", self.state.step, record | took, self.state.epoch)
        log.say(
            "dev "
            + " ".join(f"{k} {v:.3f}" for k, v in record.items())
            + f" | {took['valid_seconds']:.1f} s, {took['valid_share']:.0%} of the run so far"
        )
        early_stopping(self.exp, self.state, record, self.layout, self.models(), log.say)
        return record

    def _validate_and_save(self, log: RunLogger) -> None:
        """Validate and checkpoint, once per step: an epoch that ends on a validation step
        is not validated twice (its checkpoint then replays the epoch end on resume)."""
        if self._saved_step == self.state.step:
            return
        self._check_finite_weights()
        self.validate(log)
        self.save()
        self._saved_step = self.state.step
        self.clock.reset()

    def _save_interim(self, log: RunLogger) -> None:
        """A checkpoint between validations (train.save_every_minutes): resumable like any
        other, not a validation, so a validation at this step later still happens."""
        self._check_finite_weights()
        self.save(interim=True)
        self.clock.reset()
        log.say(f"step {self.state.step}: interim checkpoint written")

    # ---- the loop ----------------------------------------------------------------------------
    def _attach(self, batch):
        for teacher, labels in self.labels.items():
            batch = pseudo_labels.attach(batch, teacher, labels)
        return batch

    def fit(self, resume: bool | None = None) -> State:
        """Train to the end; the run directory's lock is released however this ends."""
        try:
            with tally_infeasible() as self.infeasible:  # said once an epoch, not every step
                return self._fit(self.resume_requested if resume is None else resume)
        except BaseException as e:
            if self.owns_group and not is_timeout(e):  # a peer that stopped answering would
                self._leave_group(barrier=False)  # make the teardown wait for it
            raise
        finally:
            if self.log is not None:  # with what the last, unfinished epoch left out of CTC
                self.log.close(console.infeasible_line(self.state.epoch, self.infeasible))
            self.release()

    def _leave_group(self, barrier: bool) -> None:
        for peer in self.peers.values():  # the DDP wrappers hold the process group
            peer.model = unwrap(peer.model)
        shutdown_distributed(barrier)
        self.owns_group = False

    def _fit(self, resume: bool) -> State:
        exp, cfg, state = self.exp, self.exp.train, self.state
        resumed = resume and self.resume()
        if resumed:
            state = self.state
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(exp, self.layout.config)
        keep = state.metrics_lines if resumed else 0
        log = self.log = RunLogger(
            self.run_dir, self.dist.main, cfg.max_steps, keep, state.step, state.epoch
        )
        # a resumed interim checkpoint was not validated: its step's validation may be due
        interim = resumed and is_interim(latest_checkpoint(self.run_dir))
        self._saved_step = state.step if resumed and not interim else None
        self.clock = SaveClock(cfg.save_every_minutes, cfg.log_every, self.dist.broadcast)
        log.say("\n".join(console.startup_summary(self)) if self.dist.main else "")
        # where this stretch of the run trains (a run resumed on another machine says so); a
        # finished run that is only reused trains nothing and records nothing
        finished = state.done or self._budget_spent()
        if not finished:
            log.record("start", state.step, console.start_record(self), state.epoch)
        if resumed:
            log.say(
                f"resuming at step {state.step}, epoch {state.epoch}" + (" (finished)" * finished)
            )
        collate = self.data.collator(training=True)
        while not state.done and not self._budget_spent():
            sampler = self.data.sampler(exp.data.train_split, True)
            sampler.set_epoch(state.epoch)
            # Resuming mid-epoch: the sampler is deterministic for (seed, epoch), so skipping
            # the batches already consumed (metadata only, nothing is loaded) lands on the same
            # next batch. lhotse's own sampler state_dict() refuses token-constrained samplers.
            batches = epoch_batches(
                sampler, collate, self.data.seed, state.epoch, state.micro, self._workers()
            )
            for batch in batches:
                batch = self._attach(batch).to(self.device)
                state.micro += 1
                step_now = state.micro % cfg.accum_steps == 0
                terms = self.update(
                    self.peers, self.links, batch, state.step + 1, self.opt, step_now
                )
                if not step_now:
                    continue
                state.step += 1
                log.utts += len(batch)
                self._count_skipped(log)
                if state.step % cfg.log_every == 0:
                    rates = console.learning_rates(self.optimisers)
                    log.record("train", state.step, terms | rates, state.epoch)
                    log.progress(state.step, state.epoch, _shown(terms), 0)
                stop = state.done or self._budget_spent()
                if stop or (cfg.valid_every and state.step % cfg.valid_every == 0):
                    self._validate_and_save(log)
                elif self.clock.due(state.step):
                    self._save_interim(log)
                if stop or state.done:
                    state.done = True
                    break
            else:  # the epoch ran to its end
                for opt in self.optimisers.values():  # an unfinished accumulation is dropped:
                    opt.zero_grad(set_to_none=True)  # a resumed run could not have it
                self.opt.pending.clear()
                self.opt.bad_loss = False
                self.opt.epoch_end()  # per-epoch LR decay
                state.epoch, state.micro = state.epoch + 1, 0
                log.record("epoch", state.step, {}, state.epoch)  # updates per epoch, for schedules
                log.say(console.infeasible_line(state.epoch, self.infeasible) or "")
                state.done = state.done or state.epoch >= cfg.max_epochs
                self._validate_and_save(log)
            batches.close()  # a run that stops mid-epoch ends its workers now
        if self.dist.world_size > 1:
            self._write_rank_checksums()
            if self.owns_group:
                self._leave_group(barrier=True)
        return state

    def _budget_spent(self) -> bool:
        """A budget reached (a resume at its last update trains no more; a larger one goes on)."""
        cfg, state = self.exp.train, self.state
        return state.epoch >= cfg.max_epochs or bool(cfg.max_steps and state.step >= cfg.max_steps)

    def _workers(self) -> int:
        """data.workers, or by default: a loading worker beside a GPU, none beside a CPU step."""
        workers = self.exp.data.workers
        return workers if workers is not None else int(self.device.type == "cuda")

    def _count_skipped(self, log: RunLogger) -> None:
        """A step whose update was skipped (non-finite loss or gradient norm) is counted, said
        and logged; train.max_bad_steps of them in a row stop the run (every rank decides the
        same: the skip decision itself is agreed across ranks)."""
        state, cfg = self.state, self.exp.train
        skipped = self.opt.take_skipped()
        if not skipped:
            state.skipped_streak = 0
            return
        state.skipped_steps += 1
        state.skipped_streak += 1
        peers = ", ".join(sorted(set(skipped)))
        log.record("skip", state.step, {"skipped_steps": state.skipped_steps}, state.epoch)
        log.say(
            f"step {state.step}: non-finite loss or gradient norm ({peers}): update skipped "
            f"({state.skipped_streak} in a row, {state.skipped_steps} in all)"
        )
        if state.skipped_streak >= cfg.max_bad_steps:
            last = latest_checkpoint(self.run_dir)
            raise PeerseqError(
                f"step {state.step}: {state.skipped_streak} steps in a row had a non-finite loss "
                f"or gradient norm ({peers}; train.max_bad_steps={cfg.max_bad_steps}): stopped. "
                f"The last good checkpoint is {last or 'none (no checkpoint yet)'}, kept; lower "
                "optim.lr or set train.clip_norm, then continue with --resume"
            )

    def _write_rank_checksums(self) -> None:
        """Every rank's checksums of its trainable peers' parameters -> run_dir/ddp_ranks.json
        (written by rank 0): under DDP they must be identical."""
        mine = {n: checksum(unwrap(p.model)) for n, p in self.peers.items() if p.trainable}
        gathered = self.dist.gather(mine)
        if self.dist.main:
            self.layout.ddp_ranks.write_text(
                json.dumps({"world_size": self.dist.world_size, "checksums": gathered}, indent=1)
            )
        self.dist.barrier()


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
