from types import SimpleNamespace

from peerseq.data.tokenizers import (
    CharTokenizer,
    train_normalized_sentencepiece,
    train_sentencepiece,
)
from peerseq.decoding.peer import Decoded, add_1best
from peerseq.metrics.asr import wer


def test_references_are_scored_as_the_tokenizer_sees_text(bundled):
    """chars and spm_asr hypotheses are upper case without punctuation, so their references are
    normalised the same way; a plain sentencepiece vocabulary keeps the text as written."""
    lines = (bundled / "multi30k" / "train.en").read_text().splitlines()[:1000]
    ref = "A man, in an orange hat."
    batch = SimpleNamespace(ids=["u1"], texts={"transcript": [ref]})
    for tok, want in [
        (CharTokenizer(), "A MAN IN AN ORANGE HAT"),
        (train_normalized_sentencepiece(lines, 200), "A MAN IN AN ORANGE HAT"),
        (train_sentencepiece(lines, 200), ref),
    ]:
        decoded = Decoded([], [], [])
        add_1best(decoded, batch, [[tok.encode(ref)]], tok, "transcript")
        assert decoded.refs == [want] and decoded.hyps == [want], type(tok).__name__
        assert wer(decoded.refs, decoded.hyps) == 0.0
