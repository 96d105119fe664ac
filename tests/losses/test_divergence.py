import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from peerseq.losses import (
    REDUCTIONS,
    kl_divergence,
    kl_forward,
    kl_reverse,
    kl_symmetric,
    squared_l2_posteriors,
)
from tests.losses.helpers import garbage_under_mask, log_prob_pairs

fast = settings(max_examples=20, deadline=None)
reductions = st.sampled_from(REDUCTIONS)
temperatures = st.sampled_from([1.0, 0.5, 2.0])


@fast
@given(log_prob_pairs(), reductions, temperatures)
def test_kl_is_nonnegative(pair, reduction, tau):
    p, q, mask = pair
    assert kl_divergence(p, q, mask, tau, reduction) >= 0


@fast
@given(log_prob_pairs(), reductions, temperatures)
def test_kl_of_equal_inputs_is_zero(pair, reduction, tau):
    p, _, mask = pair
    assert abs(float(kl_divergence(p, p, mask, tau, reduction))) < 1e-6
    assert abs(float(squared_l2_posteriors(p, p, mask, reduction))) < 1e-6


@fast
@given(log_prob_pairs(), reductions)
def test_kl_of_unequal_inputs_is_positive(pair, reduction):
    p, _, mask = pair
    # move mass onto the least likely class at one valid position: a clearly different q
    q = p.clone()
    v = int(p[0, 0].argmin())
    q[0, 0] = torch.log_softmax(p[0, 0] + 5 * F.one_hot(torch.tensor(v), p.size(-1)), -1)
    assert kl_divergence(p, q, mask, reduction=reduction) > 1e-6
    assert kl_divergence(q, p, mask, reduction=reduction) > 1e-6
    assert squared_l2_posteriors(p, q, mask, reduction) > 1e-6


@fast
@given(log_prob_pairs(), reductions, temperatures)
def test_symmetric_kl_is_symmetric_and_the_sum_of_both_directions(pair, reduction, tau):
    p, q, mask = pair
    pq = kl_symmetric(p, q, mask, tau, reduction)
    torch.testing.assert_close(pq, kl_symmetric(q, p, mask, tau, reduction))
    both = kl_divergence(p, q, mask, tau, reduction) + kl_divergence(q, p, mask, tau, reduction)
    torch.testing.assert_close(pq, both)


def test_forward_and_reverse_name_their_direction():
    s_p, t_p = [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]
    student, teacher = torch.tensor([[s_p]]).log(), torch.tensor([[t_p]]).log()
    mask = torch.ones(1, 1, dtype=torch.bool)
    kl_t_s = sum(t * math.log(t / s) for t, s in zip(t_p, s_p, strict=True))
    kl_s_t = sum(s * math.log(s / t) for t, s in zip(t_p, s_p, strict=True))
    assert float(kl_forward(student, teacher, mask)) == pytest.approx(kl_t_s, rel=1e-6)
    assert float(kl_reverse(student, teacher, mask)) == pytest.approx(kl_s_t, rel=1e-6)
    assert kl_t_s != pytest.approx(kl_s_t)  # the example does tell the two apart


@pytest.mark.parametrize(
    "loss",
    [
        lambda p, q, m: kl_divergence(p, q, m),
        lambda p, q, m: kl_divergence(p, q, m, temperature=2.0, reduction="sum"),
        lambda p, q, m: kl_symmetric(p, q, m, reduction="mean_utts"),
        lambda p, q, m: squared_l2_posteriors(p, q, m),
    ],
)
@pytest.mark.parametrize("garbage", [3.0, -math.inf, math.nan])
def test_masked_positions_change_nothing_and_get_no_gradient(loss, garbage):
    torch.manual_seed(0)
    p = torch.log_softmax(torch.randn(2, 4, 5, dtype=torch.float64), -1)
    q = torch.log_softmax(torch.randn(2, 4, 5, dtype=torch.float64), -1)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    ref = loss(p, q, mask)
    p2 = garbage_under_mask(p, mask, garbage).requires_grad_()
    q2 = garbage_under_mask(q, mask, garbage).requires_grad_()
    out = loss(p2, q2, mask)
    torch.testing.assert_close(out, ref)
    out.backward()
    for x in (p2, q2):
        assert torch.isfinite(x.grad).all()
        assert (x.grad[~mask] == 0).all()
        assert (x.grad[mask] != 0).any()  # gradients reach both arguments


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, b, m: kl_divergence(a, b, m),
        lambda a, b, m: kl_divergence(a, b, m, temperature=2.0, reduction="mean_utts"),
        lambda a, b, m: kl_symmetric(a, b, m, temperature=0.5, reduction="sum"),
        lambda a, b, m: squared_l2_posteriors(a, b, m),
    ],
)
def test_gradcheck(loss):
    torch.manual_seed(0)
    a = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, True, True]])

    def f(x, y):
        return loss(torch.log_softmax(x, -1), torch.log_softmax(y, -1), mask)

    assert torch.autograd.gradcheck(f, (a, b))


# a tiny batch written out by hand: 2 rows, 2 positions, 2 classes; row 0 has one valid position
P = [[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.6, 0.4]]]
Q = [[[0.6, 0.4], [0.1, 0.9]], [[0.5, 0.5], [0.3, 0.7]]]
VALID = [[True, False], [True, True]]


def _brute(per_pos, reduction):
    terms = [
        per_pos(p, q)
        for rp, rq, rm in zip(P, Q, VALID, strict=True)
        for p, q, m in zip(rp, rq, rm, strict=True)
        if m
    ]
    total = sum(terms)
    return {"sum": total, "mean_tokens": total / 3, "mean_utts": total / 2}[reduction]


def _tensors():
    return torch.tensor(P).log(), torch.tensor(Q).log(), torch.tensor(VALID)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_reductions_match_brute_force(reduction):
    p, q, mask = _tensors()
    expected = _brute(
        lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b, strict=True)), reduction
    )
    assert float(kl_divergence(p, q, mask, reduction=reduction)) == pytest.approx(expected, 1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_squared_l2_is_summed_over_classes_and_reduced_over_positions(reduction):
    p, q, mask = _tensors()
    expected = _brute(lambda a, b: sum((x - y) ** 2 for x, y in zip(a, b, strict=True)), reduction)
    out = squared_l2_posteriors(p, q, mask, reduction)
    assert float(out) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_temperature_softens_both_sides_and_scales_by_tau_squared(tau):
    p, q, mask = _tensors()

    def soft(dist):
        w = [x ** (1 / tau) for x in dist]
        return [x / sum(w) for x in w]

    per_pos = lambda a, b: sum(x * math.log(x / y) for x, y in zip(soft(a), soft(b), strict=True))
    expected = tau**2 * _brute(per_pos, "mean_tokens")
    assert float(kl_divergence(p, q, mask, tau)) == pytest.approx(expected, rel=1e-6)


@fast
@given(log_prob_pairs())
def test_temperature_one_is_plain_kl(pair):
    p, q, mask = pair
    plain = F.kl_div(q[mask], p[mask], log_target=True, reduction="sum") / mask.sum()
    torch.testing.assert_close(kl_divergence(p, q, mask, temperature=1.0), plain)


def test_zero_probability_classes_give_finite_values_and_gradients():
    # a vocabulary mask: class 2 impossible under both; KL is finite and so are its gradients
    logits = torch.tensor([[[1.0, 0.5, -math.inf], [0.2, 0.1, -math.inf]]], requires_grad=True)
    other = torch.tensor([[[0.3, 0.9, -math.inf], [0.0, 1.0, -math.inf]]], requires_grad=True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    out = kl_symmetric(logits.log_softmax(-1), other.log_softmax(-1), mask)
    out.backward()

    def softmax(xs):
        return [math.exp(x) / sum(math.exp(y) for y in xs) for x in xs]

    def kl(a, b):
        return sum(x * math.log(x / y) for x, y in zip(a, b, strict=True))

    # the impossible class adds nothing: the KL of the two possible classes, by hand
    rows = [([1.0, 0.5], [0.3, 0.9]), ([0.2, 0.1], [0.0, 1.0])]
    expected = sum(kl(softmax(a), softmax(b)) + kl(softmax(b), softmax(a)) for a, b in rows) / 2
    assert float(out.detach()) == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(logits.grad).all() and torch.isfinite(other.grad).all()


def test_bad_arguments_are_rejected():
    p, q, mask = _tensors()
    with pytest.raises(ValueError):
        kl_divergence(p, q, mask, temperature=0.0)
    with pytest.raises(ValueError):
        kl_divergence(p, q, mask, reduction="mean")
