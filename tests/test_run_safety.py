"""A training run loses nothing and never runs silently wrong: crash windows of a save, one
writer per run directory, non-finite steps, bad settings refused before any work, metrics
without duplicates after a resume, file-system faults as one-line errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from peerseq.cli import main
from peerseq.rundir.checkpoint import is_interim, latest_checkpoint, list_checkpoints
from peerseq.rundir.weights import load_weights
from tests.crashing import CRASH_CODE, fork_cli
from tests.test_train import write_config


@pytest.fixture
def corpus(m30k_64) -> Path:
    """The tiny multi30k of tests/test_train.py (tests/conftest.py, prepared once)."""
    return m30k_64


def records(run: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock times (a record's time, validation's seconds) and
    without the `start` records (one a stretch: a resumed run has one more, tested below)."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    clock = {"time", "valid_seconds", "valid_share"}
    return [{k: v for k, v in r.items() if k not in clock} for r in rows if r["split"] != "start"]


def starts(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "start"]


@pytest.fixture
def whole(whole_run) -> Path:
    """An uninterrupted run, logging every step: what every interrupted one must end as."""
    return whole_run


@pytest.mark.parametrize("at", ["rename", "write text"])
def test_a_crash_in_a_save_resumes_bit_identically_with_each_record_once(
    tmp_path, corpus, whole, at
):
    """kill -9 (os._exit) in the save of step 8: right after step-8 is renamed into place with
    `latest` still naming step-4 (the window of the issue), or after its first text file is
    written (records logged since step 4 are then in metrics.jsonl but not in a checkpoint).
    The resumed run ends with the uninterrupted run's weights and metrics records, none twice."""
    cut = write_config(tmp_path, corpus, tmp_path / "cut", log_every=1, max_epochs=2)
    log = tmp_path / "crashed.log"
    code = fork_cli(8, at, ["train", str(cut)], log)  # a child of this process, killed mid-save
    assert code == CRASH_CODE, log.read_text()[-2000:]
    root = tmp_path / "cut" / "checkpoints"
    assert (root / "latest").read_text().strip() == "step-00000004"
    assert (root / "step-00000008").is_dir() == (at == "rename")
    assert any(r["step"] > 4 for r in records(tmp_path / "cut"))

    assert main(["train", str(cut), "--resume"]) == 0
    a = load_weights(latest_checkpoint(whole) / "model.mt.safetensors")
    b = load_weights(latest_checkpoint(tmp_path / "cut") / "model.mt.safetensors")
    assert a and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert records(tmp_path / "cut") == records(whole)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # leftovers cleaned


def test_one_writer_per_run_directory(tmp_path, corpus, capsys):
    """A second run into a directory in use is refused naming the holder; the lock goes with
    its holder, even when it is killed."""
    cfg = write_config(tmp_path, corpus, tmp_path / "run", max_epochs=50)
    log = tmp_path / "holder.log"
    holder = fork_cli(0, 0, ["train", str(cfg)], log, wait=False)  # a child of this process
    running = holder.running
    try:
        deadline = time.time() + 120
        while not list_checkpoints(tmp_path / "run") and time.time() < deadline:
            assert running(), log.read_text()[-2000:]
            time.sleep(0.05)
        before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
        assert before, "the holder wrote no checkpoint in 120 s"
        assert main(["train", str(cfg), "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"another run is writing this directory (pid {holder.pid} " in err
        assert len(err.strip().splitlines()) == 1
        assert running()  # the holder was not disturbed
    finally:
        holder.kill()  # SIGKILL
    # a complete checkpoint outlives the SIGKILL (not a listing compared with `before`: the
    # `latest` pointer may or may not have been written when it was taken)
    assert list_checkpoints(tmp_path / "run")
    # killed: the kernel released its lock; the run resumes
    assert main(["train", str(cfg), "train.max_epochs=1", "--resume"]) == 0


def test_a_finished_run_is_not_overwritten_without_resume(tmp_path, corpus, capsys):
    cfg = write_config(tmp_path, corpus, tmp_path / "run", max_epochs=1)
    assert main(["train", str(cfg)]) == 0
    root = tmp_path / "run" / "checkpoints"
    before = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    config_before = (tmp_path / "run" / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", str(cfg), "optim.lr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "holds the checkpoints of an earlier run" in err and "--resume" in err
    assert "another out_dir" in err
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == before
    assert (tmp_path / "run" / "config.yaml").read_text() == config_before


def test_resume_refuses_a_changed_experiment_but_not_a_longer_one(tmp_path, corpus, capsys):
    """--resume with a different loss weight would reuse the finished run as if it had been
    trained so: refused, naming the key; another budget or thread count is accepted."""
    cfg = write_config(tmp_path, corpus, tmp_path / "run", max_epochs=1)
    assert main(["train", str(cfg)]) == 0
    config_before = (tmp_path / "run" / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", str(cfg), "optim.lr=0.1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "trained with another config" in err and "optim.lr" in err
    assert "train.max_epochs" not in err
    assert (tmp_path / "run" / "config.yaml").read_text() == config_before
    more = ["train.max_epochs=2", "train.num_threads=1", "--resume"]
    assert main(["train", str(cfg), *more]) == 0
    assert "resuming at step" in capsys.readouterr().out


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, corpus, capsys):
    """At a learning rate of 1e4 the loss turns NaN within a few steps: each such step is
    skipped and logged, and after train.max_bad_steps in a row the run stops with exit 2, its
    last good checkpoint kept and finite."""
    cfg = write_config(tmp_path, corpus, tmp_path / "run", log_every=1, early_stop_peer="mt")
    overrides = ["optim.lr=1e4", "train.clip_norm=null", "train.max_bad_steps=4"]
    assert main(["train", str(cfg), *overrides]) == 2
    out, err = capsys.readouterr()
    assert "update skipped" in out
    assert "4 steps in a row had a non-finite loss or gradient norm" in err
    last = latest_checkpoint(tmp_path / "run")
    assert last is not None and str(last) in err
    rows = records(tmp_path / "run")
    skips = [r for r in rows if r["split"] == "skip"]
    assert [r["skipped_steps"] for r in skips] == [1, 2, 3, 4]
    for folder in (last, tmp_path / "run" / "best"):
        weights = load_weights(folder / "model.mt.safetensors")
        assert all(bool(torch.isfinite(w).all()) for w in weights.values()), folder


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.accum_steps=0", "train.accum_steps"),
        ("train.log_every=0", "train.log_every"),
        ("optim.lr=-1", "optim.lr"),
        ("data.max_frames=0", "data.max_frames"),
        ("train.keep_last=0", "train.keep_last"),
        ("optim.lr=.nan", "optim.lr"),
        ("optim.betas=[0.9, 1.5]", "optim.betas[1]"),
        ("links=[{a: mt, b: mt, temperature: 0}]", "links[0].temperature"),
        ("train.device=gpu0", "train.device"),
        ("data.prepare.vocab=100", "prepare.vocab: unknown key"),
    ],
)
def test_out_of_range_settings_are_refused_before_any_work(tmp_path, capsys, override, key):
    cfg = write_config(tmp_path, tmp_path / "m30k", tmp_path / "run")
    assert main(["train", str(cfg), override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "m30k").exists()


def test_a_hand_edited_state_json_is_named(tmp_path, corpus, capsys):
    cfg = write_config(tmp_path, corpus, tmp_path / "run", max_epochs=1)
    assert main(["train", str(cfg)]) == 0
    ckpt = latest_checkpoint(tmp_path / "run")
    state = json.loads((ckpt / "state.json").read_text())
    state["epoch"] = "one"
    (ckpt / "state.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert main(["train", str(cfg), "--resume"]) == 2  # its size no longer matches the marker
    assert f"{ckpt}: not a complete checkpoint (state.json has" in capsys.readouterr().err
    marker = json.loads((ckpt / "complete.json").read_text())
    marker["files"]["state.json"] = (ckpt / "state.json").stat().st_size
    (ckpt / "complete.json").write_text(json.dumps(marker))  # edited consistently
    assert main(["train", str(cfg), "--resume"]) == 2
    assert "state.json: epoch: expected int, got 'one'" in capsys.readouterr().err


def test_file_system_faults_are_one_line_errors(tmp_path, corpus, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    cfg = write_config(tmp_path, corpus, tmp_path / "a-file" / "run")
    assert main(["train", str(cfg)]) == 2
    assert "is under " in capsys.readouterr().err
    cfg = write_config(tmp_path, corpus, Path("/proc/peerseq-run"))
    assert main(["train", str(cfg)]) == 2
    assert "/proc/peerseq-run: cannot write there" in capsys.readouterr().err

    # a full disk during the second save, as safetensors reports it (not an OSError): one line
    # naming the file, the first checkpoint intact
    import safetensors

    import peerseq.rundir.weights as wt

    real, calls = wt.save_file, []

    def full(tensors, file, metadata=None):
        calls.append(file)
        if len(calls) > 1:
            raise safetensors.SafetensorError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
                'space left on device" })'
            )
        real(tensors, file, metadata=metadata)

    monkeypatch.setattr(wt, "save_file", full)
    cfg = write_config(tmp_path, corpus, tmp_path / "full")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert "model.mt.safetensors" in err[0] and "step-00000004, is intact" in err[0]
    root = tmp_path / "full" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000004"]


def test_a_failed_average_leaves_nothing(tmp_path, corpus, capsys, monkeypatch):
    cfg = write_config(tmp_path, corpus, tmp_path / "run", max_epochs=1)
    assert main(["train", str(cfg)]) == 0

    def broken(path, state):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("peerseq.rundir.checkpoint.save_weights", broken)
    assert main(["average", str(tmp_path / "run"), "--last", "2"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not [p for p in (tmp_path / "run").iterdir() if "averaged" in p.name]


def test_the_holder_of_a_lock_is_gone_with_its_process(tmp_path):
    """The lock is the kernel's: SIGKILL releases it, no stale lock file to delete by hand."""
    code = (
        "import sys, time; from peerseq.rundir.lock import RunLock; "
        f"lock = RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    from peerseq.errors import PeerseqError
    from peerseq.rundir.lock import RunLock

    with pytest.raises(PeerseqError, match=f"pid {proc.pid} on "):
        RunLock(tmp_path).acquire()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    RunLock(tmp_path).acquire().release()


def _try_lock_elsewhere(path) -> subprocess.CompletedProcess:
    code = f"from peerseq.rundir.lock import RunLock; RunLock({str(path)!r}).acquire()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_lock_held_by_this_process_is_borrowed_not_refused(tmp_path):
    """reproduce holds a run's lock around the Trainer, which takes it again: the inner acquire
    borrows it, and its release leaves the run locked until the outer one lets go."""
    from peerseq.rundir.lock import RunLock

    (tmp_path / "link").symlink_to(tmp_path)
    outer = RunLock(tmp_path).acquire()
    inner = RunLock(tmp_path / "link").acquire()  # the same directory, spelt differently
    assert inner.borrowed and inner.fd is None
    inner.release()
    assert "another run is writing this directory" in _try_lock_elsewhere(tmp_path).stderr
    outer.release()
    assert _try_lock_elsewhere(tmp_path).returncode == 0


def test_waiting_for_a_lock_names_the_holder_then_gets_it(tmp_path, capsys):
    """Two reproduce commands checking one shared run: the second waits for the first."""
    run, marker = tmp_path / "run", tmp_path / "released"
    code = (
        "import time; from peerseq.rundir.lock import RunLock; "
        f"lock = RunLock({str(run)!r}).acquire(); print('held', flush=True); time.sleep(2); "
        f"open({str(marker)!r}, 'w').close(); lock.release(); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        from peerseq.rundir.lock import RunLock

        lock = RunLock(run, wait=True).acquire()
        assert marker.exists()  # it got the lock only once the holder had let go
        assert f"waiting for pid {proc.pid} on " in capsys.readouterr().err
        lock.release()
    finally:
        proc.kill()
        proc.wait()


def test_a_forked_child_does_not_keep_its_parents_lock(tmp_path):
    """A DataLoader worker is a fork of the training process: it must not hold the run's lock
    once the run has let go of it (killed, or ended), or a resume would be refused."""
    from peerseq.rundir.lock import RunLock

    lock = RunLock(tmp_path).acquire()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: says whether it still has a descriptor, then lingers
        os.write(write, b"none" if lock.fd is None else b"some")
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(read, 4) == b"none"
        lock.release()
        RunLock(tmp_path).acquire().release()  # the child is alive, and the lock is free
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_an_old_checkpoint_resumes_without_duplicating_an_epoch_end(tmp_path):
    """A checkpoint from before metrics_lines existed: records up to its step and epoch stay;
    the epoch end logged at its step after it was written goes (the resume logs it again)."""
    from peerseq.rundir.log import RunLogger

    rows = [
        {"split": "train", "step": 4, "epoch": 0},
        {"split": "dev", "step": 4, "epoch": 0},  # validated, then checkpoint 4 (epoch 0)
        {"split": "epoch", "step": 4, "epoch": 1},  # the epoch ended on that step
        {"split": "train", "step": 5, "epoch": 1},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = RunLogger(tmp_path, keep=None, resumed_step=4, resumed_epoch=0)
    log.close()
    assert records(tmp_path) == rows[:2] and log.lines == 2


def test_a_resumed_run_estimates_its_time_from_its_own_updates(tmp_path, capsys):
    """After a resume at step 900 of 1,000, 50 updates in 10 s leave 50 more: about 10 s, not
    the 0.6 s that 10 s / 950 steps would give."""
    from peerseq.rundir.log import RunLogger

    log = RunLogger(tmp_path, total_steps=1000, keep=None, resumed_step=900, resumed_epoch=4)
    log.start -= 10.0  # this process has trained for 10 s
    log.progress(950, 4, {"loss": 1.0}, utts=500)
    log.close()
    assert "ETA 0:10" in capsys.readouterr().out


def test_interim_checkpoints_resume_bit_identically(tmp_path, corpus, whole):
    """train.save_every_minutes (here: at every logged step between validations) writes interim
    checkpoints. Killed (os._exit) right after step 9's is renamed into place -- the epoch's
    last batch, whose validation a resume from it must still run -- the resumed run ends with
    the uninterrupted run's weights and metrics records, and only regular checkpoints remain."""
    cut = write_config(tmp_path, corpus, tmp_path / "cut", log_every=1, max_epochs=2)
    overrides = ["train.save_every_minutes=0.000001"]
    log = tmp_path / "killed.log"
    assert fork_cli(9, "rename", ["train", str(cut), *overrides], log) == CRASH_CODE
    run = tmp_path / "cut"
    assert "step 7: interim checkpoint written" in log.read_text()
    assert latest_checkpoint(run).name == "step-00000009" and is_interim(latest_checkpoint(run))

    assert main(["train", str(cut), *overrides, "--resume"]) == 0
    a, b = (load_weights(latest_checkpoint(r) / "model.mt.safetensors") for r in (whole, run))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert records(run) == records(whole)
    # each stretch says where it trained, at the step it started from
    assert [r["step"] for r in starts(run)] == [0, 9] and [r["step"] for r in starts(whole)] == [0]
    assert starts(run)[1]["precision"] == "fp32" and starts(run)[1]["threads"] == 1
    assert main(["train", str(cut), *overrides, "--resume"]) == 0  # finished: trains nothing,
    assert [r["step"] for r in starts(run)] == [0, 9]  # so it says nothing of where
    kept = list_checkpoints(run)
    assert [d.name for d in kept] == ["step-00000012", "step-00000016", "step-00000018"]
    assert not any(is_interim(d) for d in kept)


def test_a_resume_with_data_workers_and_dropout_is_bit_identical(tmp_path, corpus):
    """Killed right after the step-4 checkpoint (mid-epoch), resumed: with batches collated by
    two workers and dropout on (the tiny models have none), the resumed run ends with the
    uninterrupted run's weights -- a resumed epoch's second DataLoader draws nothing from the
    global generator the dropout masks come from."""
    over = ["data.workers=2", "peers.mt.model.overrides={dropout: 0.1}"]
    whole = write_config(tmp_path, corpus, tmp_path / "whole", log_every=1, max_epochs=2)
    assert main(["train", str(whole), *over]) == 0
    cut = write_config(tmp_path, corpus, tmp_path / "cut", log_every=1, max_epochs=2)
    assert fork_cli(4, "rename", ["train", str(cut), *over], tmp_path / "crash.log") == CRASH_CODE
    assert main(["train", str(cut), *over, "--resume"]) == 0
    a, b = (
        load_weights(latest_checkpoint(tmp_path / r) / "model.mt.safetensors")
        for r in ("whole", "cut")
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
