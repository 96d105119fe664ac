import itertools

import pytest
import torch
from torch import nn

from peerseq.models.incremental import Memory
from peerseq.search.beam_search import Hypothesis, beam_search, greedy_search, max_lengths
from peerseq.tokens import BOS, EOS, PAD


class ToyGRU(nn.Module):
    """Random GRU decoder with masked dot-product attention; implements IncrementalDecoding.

    The encoder is position-wise, so padding a source cannot change its states. The EOS logit
    grows by eos_ramp per step so that outputs end at different lengths.
    """

    def __init__(self, vocab=12, d=16, seed=0, sharp=3.0, eos_ramp=0.15):
        super().__init__()
        torch.manual_seed(seed)
        self.d, self.sharp, self.eos_ramp = d, sharp, eos_ramp
        self.src_emb = nn.Embedding(vocab, d)
        self.enc = nn.Linear(d, d)
        self.tgt_emb = nn.Embedding(vocab, d)
        self.cell = nn.GRUCell(2 * d, d)
        self.out = nn.Linear(2 * d, vocab)

    def encode(self, src, src_lengths):
        mask = torch.arange(src.size(1))[None, :] < src_lengths[:, None]
        return Memory(torch.tanh(self.enc(self.src_emb(src))), mask)

    def _attend(self, h, memory):
        att = torch.einsum("nd,nsd->ns", h, memory.x).masked_fill(~memory.mask, float("-inf"))
        return torch.einsum("ns,nsd->nd", att.softmax(-1), memory.x)

    def decode_step(self, tokens, memory, cache):
        if cache is None:
            cache = (memory.x * memory.mask[..., None]).sum(1) / memory.mask.sum(1, keepdim=True)
        e = self.tgt_emb(tokens[:, -1])
        h = self.cell(torch.cat([e, self._attend(cache, memory)], -1), cache)
        logits = self.sharp * self.out(torch.cat([h, self._attend(h, memory)], -1))
        logits[:, EOS] += self.eos_ramp * tokens.size(1)
        return logits.log_softmax(-1), h

    def reorder_cache(self, cache, index):
        return cache.index_select(0, index)


class Copy(nn.Module):
    """Emits its source tokens then EOS, each with probability ~0.9; cache counts steps."""

    def __init__(self, vocab=10):
        super().__init__()
        self.vocab = vocab

    def encode(self, src, src_lengths):
        mask = torch.arange(src.size(1))[None, :] < src_lengths[:, None]
        return Memory(src.float()[..., None], mask)

    def decode_step(self, tokens, memory, cache):
        t = tokens.size(1) - 1
        src = memory.x[..., 0].long()
        n = memory.mask.sum(1)
        want = torch.where(t < n, src[:, min(t, src.size(1) - 1)], EOS)
        logits = 4.0 * nn.functional.one_hot(want, self.vocab).float()
        return logits.log_softmax(-1), None

    def reorder_cache(self, cache, index):
        return cache


def batch(seed=0, b=6, vocab=12, max_s=9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_s + 1, (b,), generator=g)
    lengths[0] = max_s
    src = torch.randint(4, vocab, (b, max_s), generator=g)
    src = src.masked_fill(torch.arange(max_s)[None, :] >= lengths[:, None], PAD)
    return src, lengths


@torch.no_grad()
def seq_logprob(model, src, lengths, tokens):
    """Sum of log p over tokens + EOS, decoding one row without search."""
    mem = model.encode(src, lengths)
    seq = [BOS] + tokens + [EOS]
    total, cache = 0.0, None
    for t in range(1, len(seq)):
        lp, cache = model.decode_step(torch.tensor([seq[:t]]), mem, cache)
        total += float(lp[0, seq[t]])
    return total


@pytest.mark.parametrize("seed", range(3))
def test_beam_one_equals_greedy(seed):
    model = ToyGRU(seed=seed).eval()
    src, lengths = batch(seed)
    greedy = greedy_search(model, src, lengths, max_len_a=0.5, max_len_b=4)
    beam = beam_search(model, src, lengths, beam=1, max_len_a=0.5, max_len_b=4)
    assert [h[0].tokens for h in beam] == [h.tokens for h in greedy]
    assert [h[0].score for h in beam] == pytest.approx([h.score for h in greedy], abs=1e-5)


@pytest.mark.parametrize("len_penalty", [0.0, 1.0, 1.5])
def test_batched_equals_alone(len_penalty):
    model = ToyGRU(seed=1, sharp=1.5).eval()
    src, lengths = batch(1, b=7)
    kw = dict(beam=4, k=4, max_len_a=1.0, max_len_b=3, len_penalty=len_penalty)
    batched = beam_search(model, src, lengths, **kw)
    for i in range(len(lengths)):
        n = int(lengths[i])
        (alone,) = beam_search(model, src[i : i + 1, :n], lengths[i : i + 1], **kw)
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in alone], abs=1e-4)


def test_kbest_sorted_valid_and_scored_as_documented():
    model = ToyGRU(seed=2, sharp=1.0).eval()
    src, lengths = batch(2)
    limit = max_lengths(lengths, 0.5, 2)
    out = beam_search(model, src, lengths, beam=5, k=3, max_len_a=0.5, max_len_b=2)
    for i, hyps in enumerate(out):
        assert 1 <= len(hyps) <= 3
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        for h in hyps:
            assert 1 <= len(h.tokens) <= int(limit[i])  # min_len=1 forbids empty output
            assert not {BOS, EOS, PAD} & set(h.tokens)
            n = int(lengths[i])
            lp = seq_logprob(model, src[i : i + 1, :n], lengths[i : i + 1], h.tokens)
            assert h.score == pytest.approx(lp / (len(h.tokens) + 1), abs=1e-4)


def test_wide_beam_finds_exhaustive_ranking():
    # vocab: pad, bos, eos + 2 tokens; max_len 3 -> 14 non-empty outputs, all fit in beam 16
    model = ToyGRU(vocab=5, seed=3, sharp=1.0).eval()
    src, lengths = torch.tensor([[4, 3, 4]]), torch.tensor([3])
    (hyps,) = beam_search(model, src, lengths, beam=16, k=14, max_len_a=0.0, max_len_b=3)
    exact = []
    for n in range(1, 4):
        for toks in itertools.product([3, 4], repeat=n):
            exact.append((list(toks), seq_logprob(model, src, lengths, list(toks)) / (n + 1)))
    exact.sort(key=lambda x: -x[1])
    assert [h.tokens for h in hyps] == [t for t, _ in exact]
    assert [h.score for h in hyps] == pytest.approx([s for _, s in exact], abs=1e-4)


def test_eos_stops_hypothesis():
    model = Copy()
    src = torch.tensor([[5, 6, 7, 8], [9, 4, 0, 0]])
    lengths = torch.tensor([4, 2])
    for out in (beam_search(model, src, lengths, beam=3, k=3), [[h] for h in greedy_search(
            model, src, lengths)]):  # fmt: skip
        assert out[0][0].tokens == [5, 6, 7, 8]
        assert out[1][0].tokens == [9, 4]
    # its best score is the mean log-prob of the 5 (resp. 3) sure tokens
    p = torch.tensor([4.0] + [0.0] * 9).log_softmax(-1)[0].item()
    assert beam_search(model, src, lengths, beam=3)[0][0].score == pytest.approx(p, abs=1e-5)


def test_max_length_forces_eos():
    model = Copy()
    src = torch.tensor([[5, 6, 7, 8, 9, 5, 6, 7]])
    lengths = torch.tensor([8])
    out = beam_search(model, src, lengths, beam=2, k=2, max_len_a=0.5, max_len_b=1)  # 5 tokens
    assert [h.tokens for h in out[0]][0] == [5, 6, 7, 8, 9]
    assert all(len(h.tokens) <= 5 for h in out[0])
    (g,) = greedy_search(model, src, lengths, max_len_a=0.0, max_len_b=2)
    assert g.tokens == [5, 6]
    # max length 0 overrides min_len: the only output is empty
    (h0,) = beam_search(model, src, lengths, beam=2, max_len_a=0.0, max_len_b=0)
    assert h0[0].tokens == []


def test_k_larger_than_beam_rejected():
    with pytest.raises(ValueError):
        beam_search(Copy(), torch.tensor([[4]]), torch.tensor([1]), beam=2, k=3)


def test_hypothesis_fields():
    (h,), = beam_search(Copy(), torch.tensor([[4]]), torch.tensor([1]), beam=2)  # fmt: skip
    assert isinstance(h, Hypothesis) and h.tokens == [4]
