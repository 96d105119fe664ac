from peerseq.data.tokenizers import (
    CharTokenizer,
    kudo_sample,
    load_tokenizer,
    save_tokenizer,
    train_normalized_sentencepiece,
    train_sentencepiece,
)
from peerseq.tokens import BOS, EOS, PAD, UNK


def test_char_set_is_paper_003s():
    tok = CharTokenizer()
    assert tok.vocab_size == 29  # 26 letters, space, apostrophe, blank
    ids = tok.encode("Don't  stop, 42 times!")
    assert 0 not in ids  # blank is never a label
    assert tok.decode(ids) == "DON'T STOP TIMES"


def test_sentencepiece_roundtrip_sampling_and_reload(tmp_path, bundled):
    lines = (bundled / "multi30k" / "train.en").read_text().splitlines()[:2000]
    tok = train_sentencepiece(lines, vocab_size=500, seed=1)
    assert tok.vocab_size <= 500
    assert [tok.sp.id_to_piece(i) for i in (PAD, BOS, EOS, UNK)] == [
        "<pad>",
        "<s>",
        "</s>",
        "<unk>",
    ]
    s = "A man in an orange hat starring at something."
    assert tok.decode(tok.encode(s)) == s
    assert tok.encode(s) == tok.encode(s)  # evaluation is deterministic
    samples = {tuple(tok.encode(s, sample=True)) for _ in range(30)}
    assert len(samples) > 1  # subword regularisation draws different segmentations
    assert all(tok.decode(list(x)) == s for x in samples)
    save_tokenizer(tok, tmp_path, "spm_en")
    again = load_tokenizer(tmp_path, "spm_en")
    assert again.encode(s) == tok.encode(s)


def test_asr_pieces_see_the_text_as_chars_does_and_reload(tmp_path, bundled):
    lines = (bundled / "multi30k" / "train.en").read_text().splitlines()[:2000]
    tok = train_normalized_sentencepiece(lines, vocab_size=300, seed=1)
    pieces = {tok.sp.id_to_piece(i) for i in range(4, tok.vocab_size)}
    assert pieces and all(p.upper() == p for p in pieces)  # upper case only
    assert not any(ch in p for p in pieces for ch in ".,")  # punctuation never reaches it
    s = "A man, in an orange hat."
    ids = tok.encode(s)
    assert ids == tok.encode("a MAN in an orange hat") and UNK not in ids
    assert tok.decode(ids) == CharTokenizer().normalize(s) == "A MAN IN AN ORANGE HAT"
    chars = CharTokenizer().encode(s)
    assert len(ids) < len(chars) / 2  # what makes fast speech fit a x4-subsampled encoder
    save_tokenizer(tok, tmp_path, "spm_asr")
    again = load_tokenizer(tmp_path, "spm_asr")
    assert again.encode(s) == ids and again.normalize(s) == tok.normalize(s)
    assert sorted(p.name for p in (tmp_path / "tokenizers").iterdir()) == [
        "spm_asr.json",
        "spm_asr.spm",
    ]


def test_small_corpus_gets_a_smaller_vocabulary():
    tok = train_sentencepiece(["a b c d e f g", "a b c"] * 20, vocab_size=8000)
    assert 4 < tok.vocab_size < 8000


def test_sampling_draws_as_kudo_from_the_same_generator_state(bundled):
    import random

    lines = (bundled / "multi30k" / "train.en").read_text().splitlines()[:2000]
    tok = train_sentencepiece(lines, vocab_size=500, seed=1)
    sentences = lines[:40] + ["a", ""]  # one-candidate and empty sentences too
    ours, plain = random.Random(7), random.Random(7)
    for _ in range(3):  # the second and third rounds come from the kept n-best lists
        for s in sentences:
            assert tok.encode(s, sample=True, rng=ours) == kudo_sample(tok, s, plain), s
    assert ours.random() == plain.random()  # the generators consumed alike
    assert len(tok._nbest) == len(set(sentences))
