import itertools
import math

import pytest
import torch

from peerseq.search.ctc import ctc_greedy, ctc_prefix_beam_search


def collapse(path, blank=0):
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def exact_prefix_logprobs(lp):
    """lp [T, V] -> {labels: log P(labels)} by summing over all V**T alignments."""
    probs: dict[tuple, float] = {}
    p = lp.double().exp()
    for path in itertools.product(range(p.size(1)), repeat=p.size(0)):
        pr = math.prod(float(p[t, s]) for t, s in enumerate(path))
        key = collapse(path)
        probs[key] = probs.get(key, 0.0) + pr
    return {k: math.log(v) for k, v in probs.items()}


def peaked(b, t, v, seed):
    """Random posteriors whose frame-wise argmax holds > 95% of the mass."""
    g = torch.Generator().manual_seed(seed)
    path = torch.randint(0, v, (b, t), generator=g)
    logits = 0.5 * torch.randn(b, t, v, generator=g)
    logits += 8.0 * torch.nn.functional.one_hot(path, v)
    return logits.log_softmax(-1)


def test_greedy_collapses_repeats_and_drops_blanks():
    path = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 3], [2, 0, 0, 2, 2, 1, 1, 1]])
    lp = torch.nn.functional.one_hot(path, 4).float().log_softmax(-1)
    assert ctc_greedy(lp, torch.tensor([8, 5])) == [[1, 1, 2, 3], [2, 2]]
    assert ctc_greedy(lp, torch.tensor([0, 1])) == [[], [2]]


@pytest.mark.parametrize("seed", range(5))
def test_beam_one_equals_greedy_on_peaked_posteriors(seed):
    lp = peaked(6, 25, 7, seed)
    lengths = torch.tensor([25, 20, 1, 13, 25, 7])
    greedy = ctc_greedy(lp, lengths)
    beam = ctc_prefix_beam_search(lp, lengths, beam=1)
    assert [h[0][0] for h in beam] == greedy


def test_known_answer_beats_best_path():
    # two frames, p(a) = 0.4, p(blank) = 0.6: best path is blank-blank (""),
    # but "a" sums a-a, a-_, _-a = 0.64
    lp = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()[None]
    assert ctc_greedy(lp, torch.tensor([2])) == [[]]
    (hyps,) = ctc_prefix_beam_search(lp, torch.tensor([2]), beam=4, k=2)
    assert [h for h, _ in hyps] == [[1], []]
    assert [s for _, s in hyps] == pytest.approx([math.log(0.64), math.log(0.36)], abs=1e-6)


def test_wide_beam_is_exact_and_kbest_sorted():
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(3, 5, 3, generator=g).log_softmax(-1)
    lengths = torch.tensor([5, 3, 4])
    out = ctc_prefix_beam_search(lp, lengths, beam=64, k=6, token_beam=2)
    for b, hyps in enumerate(out):
        exact = exact_prefix_logprobs(lp[b, : lengths[b]])
        best = sorted(exact.items(), key=lambda kv: -kv[1])[:6]
        assert [tuple(h) for h, _ in hyps] == [k for k, _ in best]
        assert [s for _, s in hyps] == pytest.approx([v for _, v in best], abs=1e-5)
        scores = [s for _, s in hyps]
        assert scores == sorted(scores, reverse=True)


def test_batched_equals_one_by_one_with_pruning():
    g = torch.Generator().manual_seed(1)
    lp = (2 * torch.randn(4, 30, 12, generator=g)).log_softmax(-1)
    lengths = torch.tensor([30, 11, 24, 2])
    batched = ctc_prefix_beam_search(lp, lengths, beam=6, k=3, token_beam=4)
    for b in range(4):
        (alone,) = ctc_prefix_beam_search(
            lp[b : b + 1, : lengths[b]], lengths[b : b + 1], beam=6, k=3, token_beam=4
        )
        assert [h for h, _ in batched[b]] == [h for h, _ in alone]
        assert [s for _, s in batched[b]] == pytest.approx([s for _, s in alone], abs=1e-5)
        assert len(alone) == 3


def test_zero_length_utterance_gives_empty_hypothesis():
    lp = torch.randn(2, 4, 5).log_softmax(-1)
    out = ctc_prefix_beam_search(lp, torch.tensor([0, 4]), beam=3, k=2)
    assert out[0] == [([], 0.0)]
