import pytest

from peerseq.engine.schedules import Constant, Cyclical, Delayed, LinearWarmup, make_schedule
from peerseq.errors import PeerseqError


def test_cyclical_matches_paper_000_eq_11_12_at_the_boundaries():
    beta = Cyclical(R=0.5, C=5000)
    # r = (t - 1) mod C; beta = r / (R C) for r <= R C, else 1
    assert beta(1) == 0.0  # r = 0: each cycle starts at 0
    assert beta(2) == pytest.approx(1 / 2500)
    assert beta(1251) == pytest.approx(0.5)
    assert beta(2500) == pytest.approx(2499 / 2500)
    assert beta(2501) == 1.0  # r = R C = 2500: reaches 1
    assert beta(2502) == 1.0  # r > R C: stays at 1
    assert beta(5000) == 1.0  # r = C - 1: last step of the cycle
    assert beta(5001) == 0.0  # r = 0 again: the next cycle
    assert beta(7501) == 1.0


def test_cyclical_with_other_r_and_value():
    beta = Cyclical(R=0.25, C=8, value=2.0)
    assert [beta(t) for t in range(1, 10)] == [0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0]


def test_constant_and_warmup():
    assert Constant(0.3)(1) == Constant(0.3)(10**6) == 0.3
    w = LinearWarmup(2.0, steps=4)
    assert [w(t) for t in (1, 2, 4, 5, 100)] == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_make_schedule():
    assert make_schedule(0.5) == Constant(0.5)
    assert make_schedule({"type": "cyclical", "R": 0.5, "C": 10}) == Cyclical(0.5, 10)
    with pytest.raises(PeerseqError, match="expected a number"):
        make_schedule({"type": "cosine"})
    with pytest.raises(PeerseqError, match="cyclical"):
        make_schedule({"type": "cyclical", "X": 1})


def test_a_delayed_schedule_is_off_then_runs_from_its_own_step_1():
    beta = make_schedule({"type": "cyclical", "R": 0.5, "C": 4, "start": 3})
    assert beta == Delayed(Cyclical(0.5, 4), 3)
    # off for steps 1-3, then Cyclical(0.5, 4) from its step 1: 0, 0.5, 1, 1, 0 (next cycle)
    assert [beta(t) for t in range(1, 9)] == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    assert make_schedule({"type": "constant", "value": 2.0, "start": 0}) == Constant(2.0)
    with pytest.raises(PeerseqError, match="start"):
        make_schedule({"type": "warmup", "steps": 2, "start": -1})


def test_a_link_config_start_reaches_the_link_weight():
    from peerseq.build import schedule
    from peerseq.experiment import LinkConfig

    cfg = LinkConfig(a="mt", b="st", schedule="warmup", warmup=2, weight=1.0, start=10)
    w = schedule(cfg)
    assert [w(t) for t in (1, 10, 11, 12, 100)] == [0.0, 0.0, 0.5, 1.0, 1.0]
