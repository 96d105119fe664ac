"""Token ids every part of peerseq agrees on.

Text vocabularies (sentencepiece, trained with these ids): pad=0, bos=1, eos=2, unk=3.
CTC vocabularies (the character set) put blank at 0.
"""

PAD, BOS, EOS, UNK = 0, 1, 2, 3
BLANK = 0
