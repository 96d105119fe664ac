"""Lanes of `peerseq reproduce`: a run another command holds is put last, the other lanes'
command line, their threads, and what a failed lane says (a whole run of lanes is in
tests/recipes/test_em_network.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from peerseq.cli import main
from peerseq.errors import PeerseqError
from peerseq.report.lanes import Lanes, lane_overrides, other_lane_argv
from peerseq.report.recipe import load_recipe
from peerseq.report.reproduce import Request, plan, reproduce


def test_the_other_lanes_run_the_same_command_without_lanes():
    argv = ["reproduce", "recipes/x", "--lanes", "2", "--seeds", "1 2", "--lanes=3", "--no-test"]
    got = other_lane_argv(argv, ["optim.lr=1e-3", "train.num_threads=1"])
    assert got == ["reproduce", "recipes/x", "--seeds", "1 2", "--no-test", "--",
                   "optim.lr=1e-3", "train.num_threads=1"]  # fmt: skip


def test_every_lane_gets_one_thread_unless_the_command_chose():
    assert lane_overrides(["optim.lr=1e-3"]) == ["optim.lr=1e-3", "train.num_threads=1"]
    assert lane_overrides(["train.num_threads=2"]) == ["train.num_threads=2"]


def test_a_failed_lane_is_named_with_its_log(tmp_path):
    with pytest.raises(PeerseqError, match=r"lane 2 failed \(exit 2\): see .*lane-2\.log"):
        with Lanes(2, ["reproduce", str(tmp_path / "no-such-recipe")], tmp_path):
            pass
    assert "peerseq: error:" in (tmp_path / "lane-2.log").read_text()


def test_lanes_must_be_one_or_more(capsys):
    assert main(["reproduce", "recipes/em_network", "--lanes", "0"]) == 2
    assert "--lanes: expected 1 or more processes, got 0" in capsys.readouterr().err


def test_two_lanes_of_one_reproduce_split_its_runs(tmp_path, capsys):
    """The same reproduce command in two terminals: a run the other lane is training is put
    last (then waited for), so the lanes train different runs side by side."""
    rec = load_recipe(Path(__file__).parents[2] / "recipes" / "em_network")
    req = Request(
        scale="small", out=tmp_path, methods=["mt", "rdrop"], test=False, settings={"task": "mt"}
    )
    busy, marker = tmp_path / "small" / "mt" / "de-en" / "s1" / "mt", tmp_path / "released"
    code = (
        "import time; from peerseq.rundir.lock import RunLock; "
        f"lock = RunLock({str(busy)!r}).acquire(); print('held', flush=True); time.sleep(2); "
        f"open({str(marker)!r}, 'w').close(); lock.release(); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    trained = []

    def train(config, overrides):
        out = next(o.split("=", 1)[1] for o in overrides if o.startswith("out_dir="))
        trained.append((Path(out).name, marker.exists()))

    try:
        assert proc.stdout.readline().strip() == "held"
        done = reproduce(rec, req, train)
    finally:
        proc.kill()
        proc.wait()
    # rdrop while the other lane held mt; mt only once it had let go
    assert trained == [("rdrop", False), ("mt", True)]
    assert [d["run"] for d in done] == ["rdrop", "mt"]
    assert "== mt (seed 1): another command is training it; back to it last" in (
        capsys.readouterr().out
    )
    # a teacher its students need is waited for, never put last
    seqkd = Request(scale="small", out=tmp_path, methods=["seqkd"], settings={"task": "mt"})
    assert plan(rec, seqkd).prerequisites() == {"teacher_mt"}
