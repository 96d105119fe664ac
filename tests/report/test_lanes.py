"""`peerseq reproduce --lanes N`: the other lanes' command line, their threads, and what a failed
lane says (a whole run of lanes is in tests/recipes/test_em_network.py)."""

from __future__ import annotations

import pytest

from peerseq.cli import main
from peerseq.errors import PeerseqError
from peerseq.report.lanes import Lanes, lane_overrides, other_lane_argv


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
