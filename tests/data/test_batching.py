"""One Batch type for every task; frame/token budgets; deterministic for a seed."""

import pytest
import torch

from peerseq.data.batching import (
    FieldSpec,
    SpeechCollator,
    TextCollator,
    filter_cuts,
    iterate,
    pad_tokens,
    speech_sampler,
    text_examples,
    text_sampler,
)
from peerseq.data.manifest import load_split, load_text_split
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.tokenizers import load_tokenizer
from peerseq.tokens import EOS


@pytest.fixture(scope="module")
def m30ks(tmp_path_factory):
    out = tmp_path_factory.mktemp("m30ks") / "m30ks"
    prepare(PrepareArgs("multi30k-speech", out, limit=24, vocab_size=300))
    return out


def _fields(d):
    return {
        "transcript": FieldSpec("transcript", load_tokenizer(d, "chars")),
        "source": FieldSpec("en", load_tokenizer(d, "spm_en")),
        "target": FieldSpec("de", load_tokenizer(d, "spm_de"), add_eos=True),
    }


def test_one_batch_feeds_st_and_mt(m30ks):
    cuts = load_split(m30ks, "train")
    collate = SpeechCollator(_fields(m30ks), features="fbank80", cmvn=True)
    batches = list(iterate(speech_sampler(cuts, 3000, shuffle=True, seed=1), collate))
    assert sum(len(b) for b in batches) == 24
    for b in batches:
        assert b.speech.shape[0] == len(b) and b.speech.shape[2] == 80
        assert int(b.speech_lengths.max()) == b.speech.shape[1]
        assert b.speech.shape[0] * b.speech.shape[1] <= 3000 + 2  # padded frames within budget
        for name in ("transcript", "source", "target"):
            toks, lens = b.tokens[name], b.lengths[name]
            assert toks.shape == (len(b), int(lens.max()))
        # the target ends with EOS; texts line up with ids
        last = b.tokens["target"][torch.arange(len(b)), b.lengths["target"] - 1]
        assert (last == EOS).all()
        chars = load_tokenizer(m30ks, "chars")
        i = 0
        n = int(b.lengths["transcript"][i])
        assert chars.decode(b.tokens["transcript"][i, :n].tolist()) == chars.normalize(
            b.texts["transcript"][i]
        )


def test_sampler_is_deterministic_for_a_seed(m30ks):
    cuts = load_split(m30ks, "train")
    order = lambda seed: [[c.id for c in b] for b in speech_sampler(cuts, 2000, True, seed)]
    assert order(3) == order(3)
    assert order(3) != order(4)


def test_filters(m30ks):
    cuts = load_split(m30ks, "train")
    durations = sorted(c.duration for c in cuts)
    mid = durations[len(durations) // 2]
    kept = filter_cuts(cuts, max_frames=int(mid * 100)).to_eager()
    assert all(c.duration <= mid for c in kept) and 0 < len(kept) < len(cuts)
    kept = filter_cuts(cuts, max_frames=None, min_seconds=mid).to_eager()
    assert all(c.duration >= mid for c in kept) and 0 < len(kept) < len(cuts)


def test_text_batches_respect_the_token_budget(tmp_path):
    prepare(PrepareArgs("multi30k", tmp_path / "m", limit=200, vocab_size=300))
    rows = load_text_split(tmp_path / "m", "train")
    src = FieldSpec("en", load_tokenizer(tmp_path / "m", "spm_en"))
    tgt = FieldSpec("de", load_tokenizer(tmp_path / "m", "spm_de"), add_eos=True)
    sampler = text_sampler(text_examples(rows, src), max_tokens=400, shuffle=True, seed=1)
    seen = 0
    for b in iterate(sampler, TextCollator({"source": src, "target": tgt})):
        seen += len(b)
        # the budget counts the measured column plus one (EOS) per sentence, padding included
        assert b.tokens["source"].shape[0] * (b.tokens["source"].shape[1] + 1) <= 400
        assert b.speech is None
    assert seen == 200


def test_pad_tokens():
    toks, lens = pad_tokens([[5, 6, 7], [8]])
    assert toks.tolist() == [[5, 6, 7], [8, 0, 0]] and lens.tolist() == [3, 1]
