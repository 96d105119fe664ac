import torch
from torch import nn

from peerseq.models.incremental import Memory
from peerseq.models.output import SeqOutput
from peerseq.search.beam_search import beam_search
from peerseq.search.cascade import asr_1best, cascade, pad_batch
from peerseq.tokens import EOS


class Copy(nn.Module):
    """MT stand-in: emits its source tokens then EOS."""

    def encode(self, src, src_lengths):
        mask = torch.arange(src.size(1))[None, :] < src_lengths[:, None]
        return Memory(src.float()[..., None], mask)

    def decode_step(self, tokens, memory, cache):
        t = tokens.size(1) - 1
        src = memory.x[..., 0].long()
        want = torch.where(t < memory.mask.sum(1), src[:, min(t, src.size(1) - 1)], EOS)
        return (4.0 * nn.functional.one_hot(want, 12).float()).log_softmax(-1), None

    def reorder_cache(self, cache, index):
        return cache


class FakeCTC(nn.Module):
    """'Speech' [B, T, 1] holds the frame-wise CTC label; returns peaked posteriors."""

    def forward(self, speech, lengths):
        logits = 10.0 * nn.functional.one_hot(speech[..., 0].long(), 8).float()
        return SeqOutput.from_logits(logits, lengths)


def asr_decode(ids):  # ASR ids 4.. -> letters
    return "".join(chr(ord("a") + i - 4) for i in ids)


def mt_encode(text):  # letters -> MT ids 4..; in reverse, so the two vocabularies differ
    return [ord(c) - ord("a") + 4 for c in reversed(text)]


def test_ctc_asr_then_mt():
    frames = torch.tensor([[4, 4, 0, 5, 6, 6], [7, 0, 7, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    speech, lengths = frames[..., None].float(), torch.tensor([6, 3, 6])
    out = cascade(FakeCTC(), Copy(), speech, lengths, asr_decode, mt_encode, beam=3, k=2)
    assert out.transcripts == ["abc", "dd", ""]
    assert out.translations[0][0].tokens == [6, 5, 4]
    assert out.translations[1][0].tokens == [7, 7]
    assert len(out.translations[0]) == 2
    # an empty transcript becomes a lone-EOS source, which Copy cannot copy but may not emit
    # at step 0 (min_len); the search still returns a hypothesis
    assert len(out.translations[2]) >= 1


def test_encoder_decoder_asr_uses_beam_search():
    speech, lengths = torch.tensor([[5, 6, 0], [4, 0, 0]]), torch.tensor([2, 1])
    assert asr_1best(Copy(), speech, lengths, beam=2, max_len_a=1.0) == [[5, 6], [4]]
    # plain callables returning ids pass through
    assert asr_1best(lambda s, n: [[4], [5, 5]], speech, lengths) == [[4], [5, 5]]


def test_matches_manual_pipeline():
    frames = torch.tensor([[4, 0, 5, 5, 0, 7], [6, 6, 6, 0, 4, 0]])
    speech, lengths = frames[..., None].float(), torch.tensor([6, 5])
    out = cascade(FakeCTC(), Copy(), speech, lengths, asr_decode, mt_encode, beam=4)
    src, src_lengths = pad_batch([mt_encode(t) for t in ["abd", "ca"]])
    ref = beam_search(Copy(), src, src_lengths, beam=4)
    assert out.transcripts == ["abd", "ca"]
    assert [h[0].tokens for h in out.translations] == [h[0].tokens for h in ref]
