import torch

from peerseq.data.tokenizers import CharTokenizer, train_normalized_sentencepiece
from peerseq.report.analyses import posteriorgram_rows


def test_posteriorgram_draws_every_char_but_only_the_pieces_in_play(bundled):
    chars = CharTokenizer()
    rows, labels = posteriorgram_rows(chars, "A DOG", [torch.rand(5, 29)])
    assert rows == list(range(29)) and labels[:3] == ["<b>", "␣", "'"] and labels[-1] == "Z"
    lines = (bundled / "multi30k" / "train.en").read_text().splitlines()[:1000]
    tok = train_normalized_sentencepiece(lines, 200)
    ref = tok.encode("A dog runs.")
    post = torch.zeros(4, tok.vocab_size)
    post[[0, 1, 2, 3], [0, 150, 0, 151]] = 1.0  # frames' best: blank, 150, blank, 151
    rows, labels = posteriorgram_rows(tok, "A dog runs.", [post, post])
    assert rows == [0, *sorted(set(ref) | {150, 151})]
    assert labels[0] == "<b>" and len(labels) == len(rows)
    assert labels[1:] == [tok.sp.id_to_piece(k).replace("\u2581", "␣") for k in rows[1:]]
