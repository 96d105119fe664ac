"""Checkpoints: exact resume of several peers, atomic layout, refusal of pickled code, averaging."""

from __future__ import annotations

import builtins
import copy
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from peerseq.errors import PeerseqError
from peerseq.rundir.checkpoint import (
    average_run,
    clean_leftovers,
    is_interim,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from peerseq.rundir.weights import average_checkpoints, load_weights, save_weights


class Tied(nn.Module):
    """Embedding and output projection share one weight, as in a transformer LM."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(8, 10, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N,) -> (N, 10)
        return self.out(self.drop(self.emb(x)))


def make_peers(seed: int):
    torch.manual_seed(seed)
    models = {
        "a": nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.BatchNorm1d(16), nn.Linear(16, 3)),
        "b": Tied(),
    }
    optimisers = {
        "a": torch.optim.AdamW(models["a"].parameters(), lr=1e-2),
        "b": torch.optim.SGD(models["b"].parameters(), lr=0.1, momentum=0.9),
    }
    schedulers = {
        p: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 / (1 + s))
        for p, o in optimisers.items()
    }
    return models, optimisers, schedulers


def train(models, optimisers, schedulers, steps: int) -> None:
    """Inputs come from the torch, numpy and python RNGs, so a resume matches only if all three
    (and dropout's torch RNG) are restored."""
    for _ in range(steps):
        scale = float(np.random.rand()) + random.random()
        x = torch.randn(6, 4) * scale
        y = torch.randint(0, 10, (6,))
        loss = models["a"](x).pow(2).mean() + nn.functional.cross_entropy(models["b"](y), y)
        for opt in optimisers.values():
            opt.zero_grad()
        loss.backward()
        for p in models:
            optimisers[p].step()
            schedulers[p].step()


def params(models) -> dict[str, torch.Tensor]:
    return {f"{p}.{k}": v.clone() for p, m in models.items() for k, v in m.state_dict().items()}


def assert_same(x, y) -> None:
    if isinstance(x, torch.Tensor):
        assert torch.equal(x, y)
    elif isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            assert_same(x[k], y[k])
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for a, b in zip(x, y, strict=True):
            assert_same(a, b)
    else:
        assert x == y


def test_round_trip_and_exact_resume(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    train(models, optimisers, schedulers, 2)
    sampler_rng = random.Random(5)
    extra = {
        "epoch": 1,
        "step": 2,
        "best": float("inf"),
        "sampler": {"bucket_rng_state": sampler_rng.getstate(), "diag": {3: [1, 2.5, "x"]}},
    }
    ckpt = save_checkpoint(tmp_path, 2, models, optimisers, schedulers, extra, keep_last=3)
    saved_params = params(models)
    saved_optim = {p: copy.deepcopy(o.state_dict()) for p, o in optimisers.items()}

    train(models, optimisers, schedulers, 3)  # the original run continues
    expected = params(models)

    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # scramble all RNGs
    fresh, fresh_opt, fresh_sched = make_peers(1)
    got_extra = load_checkpoint(ckpt, fresh, fresh_opt, fresh_sched)

    assert_same(params(fresh), saved_params)
    for p in fresh_opt:
        assert_same(fresh_opt[p].state_dict(), saved_optim[p])
        assert fresh_sched[p].last_epoch == 2
    assert fresh["b"].out.weight is fresh["b"].emb.weight  # loading keeps the tie
    assert got_extra["best"] == float("inf") and got_extra["sampler"]["diag"] == {3: [1, 2.5, "x"]}
    restored = random.Random()
    restored.setstate(got_extra["sampler"]["bucket_rng_state"])  # needs tuples, not lists
    assert restored.random() == sampler_rng.random()

    train(fresh, fresh_opt, fresh_sched, 3)
    assert_same(params(fresh), expected)  # bit-identical continuation
    assert latest_checkpoint(tmp_path) == ckpt
    with safe_open(str(ckpt / "model.b.safetensors"), framework="pt") as f:
        assert len(list(f.keys())) == 1  # the tied weight is stored once


def test_interim_checkpoints_are_newest_only_and_not_counted(tmp_path):
    """An interim checkpoint resumes like any other, but keep_last and `average --last` skip
    it, the next checkpoint removes it, and a regular one of the same step replaces it."""
    models, optimisers, schedulers = make_peers(0)

    def save(step, interim=False):
        return save_checkpoint(
            tmp_path, step, models, optimisers, schedulers, {}, keep_last=2, interim=interim
        )

    names = lambda **kw: [d.name for d in list_checkpoints(tmp_path, **kw)]  # noqa: E731
    save(10), save(20), save(25, interim=True)
    assert names() == ["step-00000010", "step-00000020", "step-00000025"]  # keep_last: 2 regular
    assert names(interim=False) == ["step-00000010", "step-00000020"]
    assert latest_checkpoint(tmp_path).name == "step-00000025"  # a resume starts there
    assert average_run(tmp_path, 2).joinpath("from.json").read_text().strip() == (
        '["step-00000010", "step-00000020"]'
    )
    save(27, interim=True)  # supersedes the interim one before it
    assert names() == ["step-00000010", "step-00000020", "step-00000027"]
    save(30)
    assert names() == ["step-00000020", "step-00000030"]
    save(40, interim=True)
    save(40)  # an epoch's last batch: the interim checkpoint gives way to the regular one
    assert names() == ["step-00000030", "step-00000040"] and names(interim=False) == names()
    with pytest.raises(PeerseqError, match="already exists"):
        save(40, interim=True)


def test_keep_last_deletes_older(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, models, optimisers, schedulers, {}, keep_last=2)
    assert [d.name for d in list_checkpoints(tmp_path)] == ["step-00000030", "step-00000040"]
    assert not [d for d in (tmp_path / "checkpoints").iterdir() if d.name.startswith(".step")]
    with pytest.raises(PeerseqError, match="already exists"):
        save_checkpoint(tmp_path, 40, models, optimisers, schedulers, {})


def test_partial_dir_and_stale_pointer_are_ignored(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    ckpt = save_checkpoint(tmp_path, 5, models, optimisers, schedulers, {})
    partial = tmp_path / "checkpoints" / ".step-00000009.partial-x1y2"
    partial.mkdir()
    (partial / "model.a.safetensors").write_bytes(b"half")
    (partial / "state.json").write_text("{}")
    assert latest_checkpoint(tmp_path) == ckpt
    (tmp_path / "checkpoints" / "latest").write_text("step-00000099\n")  # points nowhere
    assert latest_checkpoint(tmp_path) == ckpt
    assert latest_checkpoint(tmp_path / "empty") is None


class Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",)


class SystemPayload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_blocked_module_is_refused_by_name(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    ckpt = save_checkpoint(tmp_path, 1, models, optimisers, schedulers, {})
    marker = tmp_path / "marker"
    torch.save({"optimizer": SystemPayload(marker), "scheduler": None}, ckpt / "optim.a.pt")
    with pytest.raises(PeerseqError, match=r"optim.a.pt: refused: it asks to load posix.system"):
        load_checkpoint(ckpt, models, optimisers, schedulers)
    assert not marker.exists()


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_optimiser_file_is_refused(tmp_path, writer):
    models, optimisers, schedulers = make_peers(0)
    ckpt = save_checkpoint(tmp_path, 1, models, optimisers, schedulers, {})
    marker = tmp_path / "marker"
    evil = {"optimizer": Payload(marker), "scheduler": None}
    with open(ckpt / "optim.a.pt", "wb") as f:
        pickle.dump(evil, f, protocol=2) if writer == "pickle" else torch.save(evil, f)
    # the payload is real: plain unpickling runs it
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.exists()

    before = params(models)
    with pytest.raises(PeerseqError, match="optim.a.pt: refused: it asks to load .*exec") as e:
        load_checkpoint(ckpt, models, optimisers, schedulers)
    assert "weights_only=False" not in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()
    assert_same(params(models), before)  # nothing was modified


def test_bad_files_name_the_file(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    ckpt = save_checkpoint(tmp_path, 1, models, optimisers, schedulers, {})
    other = {"a": nn.Sequential(nn.Linear(4, 16)), "b": Tied()}
    with pytest.raises(PeerseqError, match=r"model\.a\.safetensors.*missing keys.*unexpected"):
        load_checkpoint(ckpt, other)
    (ckpt / "model.b.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(PeerseqError, match=r"model\.b\.safetensors"):
        load_checkpoint(ckpt, models)
    (ckpt / "rng.pt").unlink()
    with pytest.raises(PeerseqError, match=r"rng\.pt: missing"):
        load_checkpoint(ckpt, {"a": models["a"]})


def test_unpicklable_scheduler_state_refused_at_save(tmp_path):
    class Warmup:  # a callable object: LambdaLR saves its __dict__
        def __init__(self) -> None:
            self.where = tmp_path

        def __call__(self, step: int) -> float:
            return 1.0

    models, optimisers, _ = make_peers(0)
    schedulers = {"a": torch.optim.lr_scheduler.LambdaLR(optimisers["a"], Warmup())}
    with pytest.raises(PeerseqError, match="optim.a.pt.*would need pickle"):
        save_checkpoint(tmp_path, 1, models, optimisers, schedulers, {})
    assert not list((tmp_path / "checkpoints").iterdir())  # no step dir, no partial left


def test_average_of_three_equals_manual_mean(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    snapshots = []
    for step in (1, 2, 3):
        train(models, optimisers, schedulers, 1)
        save_checkpoint(tmp_path, step, models, optimisers, schedulers, {}, rng=False)
        snapshots.append(params(models))
    avg = average_checkpoints(list_checkpoints(tmp_path)[-3:], "a")
    for key, value in avg.items():
        if value.is_floating_point():
            manual = sum(s[f"a.{key}"].double() for s in snapshots) / 3
            torch.testing.assert_close(value, manual.float(), rtol=0, atol=1e-7)
        else:  # BatchNorm's num_batches_tracked: from the last checkpoint
            assert torch.equal(value, snapshots[-1][f"a.{key}"])

    tied = average_checkpoints(list_checkpoints(tmp_path), "b")
    assert tied["out.weight"] is tied["emb.weight"]
    save_weights(tmp_path / "avg.b.safetensors", tied)
    fresh = Tied()
    fresh.load_state_dict(load_weights(tmp_path / "avg.b.safetensors"))
    assert torch.equal(fresh.emb.weight, tied["emb.weight"])


# ---------------------------------------------------------------- crashes during a save


def scenario(run_dir, until: int = 6, interim_at: int | None = None) -> None:
    """Two peers trained 2 steps at a time, a checkpoint every 2 steps (keep_last=1), resumed
    from the newest complete checkpoint when there is one; the final weights go to
    RUN/final.safetensors. tests/crashing.py kills it inside one of its saves. interim_at: at
    that step an interim checkpoint comes first, then the regular one replaces it (as at an
    epoch's last batch)."""
    run_dir = Path(run_dir)
    models, optimisers, schedulers = make_peers(0)
    np.random.seed(0), random.seed(0)
    step = 0
    clean_leftovers(run_dir)  # first, as the trainer does (it may give back a checkpoint)
    ckpt = latest_checkpoint(run_dir, strict=True)
    if ckpt is not None:
        torch.manual_seed(7), np.random.seed(7), random.seed(7)  # the checkpoint restores them
        step = load_checkpoint(ckpt, models, optimisers, schedulers)["step"]
    while step < until:
        train(models, optimisers, schedulers, 2)
        step += 2
        if step == interim_at:
            save_checkpoint(
                run_dir, step, models, optimisers, schedulers, {"step": step}, 1, interim=True
            )
        save_checkpoint(run_dir, step, models, optimisers, schedulers, {"step": step}, keep_last=1)
    save_weights(run_dir / "final.safetensors", params(models))


def test_a_crash_at_every_point_of_a_save_resumes_bit_identically(tmp_path):
    """kill -9 after each write, rename, pointer update and removal of the save of step 4
    (which also prunes step 2): the resumed run ends with the uninterrupted run's weights, no
    leftover file, and a pointer to its newest checkpoint."""
    from tests.crashing import CRASH_CODE, all_crash_points

    scenario(tmp_path / "whole")
    expected = load_weights(tmp_path / "whole" / "final.safetensors")
    report = all_crash_points(4, tmp_path)  # each run in a child forked from this process
    # 2 weights (write + rename each), 2 optimisers, rng, state, marker, the directory, the
    # pointer (write + rename), the pruned step 2 (rename + removal)
    assert report["operations"] >= 14 and report["count"] == 0
    for k in range(1, report["operations"] + 1):
        assert report["codes"][k] == CRASH_CODE, k
        run = tmp_path / f"crash-{k}"
        scenario(run)  # resume
        got = load_weights(run / "final.safetensors")
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[key], expected[key]) for key in got), f"crash point {k}"
        root = run / "checkpoints"
        assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000006"], k
        assert (root / "latest").read_text().strip() == "step-00000006"


def test_a_crash_at_every_point_of_an_interim_checkpoints_replacement_resumes(tmp_path):
    """kill -9 after each operation of the two saves of step 4: an interim checkpoint, then the
    regular one that replaces it (an epoch's last batch). Wherever it dies, a resume finds
    step 4 or step 2 (never nothing), ends with the uninterrupted run's weights and leaves no
    leftover; a crash between setting the interim one aside and renaming the new one into
    place gets the interim one back."""
    from tests.crashing import CRASH_CODE, all_crash_points

    scenario(tmp_path / "whole", interim_at=4)
    expected = load_weights(tmp_path / "whole" / "final.safetensors")
    report = all_crash_points(4, tmp_path, interim_at=4)
    assert report["operations"] >= 28 and report["count"] == 0
    seen_aside = False
    for k in range(1, report["operations"] + 1):
        assert report["codes"][k] == CRASH_CODE, k
        run = tmp_path / f"crash-{k}"
        root = run / "checkpoints"
        set_aside = not (root / "step-00000004").exists() and any(root.glob("*.replaced-*"))
        clean_leftovers(run)
        resumed = latest_checkpoint(run, strict=True)
        assert resumed is not None and resumed.name in ("step-00000002", "step-00000004"), k
        assert not set_aside or (resumed.name == "step-00000004" and is_interim(resumed)), k
        seen_aside = seen_aside or set_aside
        scenario(run, interim_at=4)  # resume
        got = load_weights(run / "final.safetensors")
        assert all(torch.equal(got[key], expected[key]) for key in got), f"crash point {k}"
        assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000006"], k
    assert seen_aside  # one crash point fell between setting aside and the rename


def test_a_stale_pointer_is_not_trusted(tmp_path):
    """The window of a crash between a step directory's rename and the pointer update."""
    models, optimisers, schedulers = make_peers(0)
    save_checkpoint(tmp_path, 2, models, optimisers, schedulers, {})
    newest = save_checkpoint(tmp_path, 4, models, optimisers, schedulers, {})
    (tmp_path / "checkpoints" / "latest").write_text("step-00000002\n")
    assert latest_checkpoint(tmp_path, strict=True) == newest
    save_checkpoint(tmp_path, 6, models, optimisers, schedulers, {})  # no "already exists"


def test_an_edited_checkpoint_is_named_not_passed_over(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    save_checkpoint(tmp_path, 2, models, optimisers, schedulers, {"step": 2})
    newest = save_checkpoint(tmp_path, 4, models, optimisers, schedulers, {"step": 4})
    (newest / "state.json").write_text('{"step": 4, "note": "edited"}')
    assert latest_checkpoint(tmp_path).name == "step-00000002"  # not complete: not listed
    with pytest.raises(PeerseqError, match=r"step-00000004: not a complete checkpoint \(state"):
        latest_checkpoint(tmp_path, strict=True)


def test_leftovers_are_cleaned(tmp_path):
    models, optimisers, schedulers = make_peers(0)
    ckpt = save_checkpoint(tmp_path, 2, models, optimisers, schedulers, {})
    root = tmp_path / "checkpoints"
    for name in (".step-00000004.partial-ab12", ".step-00000001.deleting-cd34"):
        (root / name).mkdir()
        (root / name / "model.a.safetensors").write_bytes(b"half")
    (root / ".latest.x1.tmp").write_text("step-")
    assert sorted(clean_leftovers(tmp_path)) == sorted(
        [".step-00000004.partial-ab12", ".step-00000001.deleting-cd34", ".latest.x1.tmp"]
    )
    assert sorted(p.name for p in root.iterdir()) == ["latest", ckpt.name]
