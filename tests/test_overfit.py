"""End-to-end sanity: tiny models memorise a handful of real examples.

Data preparation, features, tokenizers, batching, model presets, losses and decoding all run
together; a model that cannot overfit 8 utterances or 20 sentence pairs has a broken link.
Step budgets are about 3x what was measured to be needed on one thread (CTC: ~110 steps, ~3 s;
MT: ~125 steps, ~2 s).
"""

from __future__ import annotations

from pathlib import Path

import torch

from peerseq.data.batching import FieldSpec, SpeechCollator, TextCollator, text_examples
from peerseq.data.manifest import load_split, load_text_split
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.tokenizers import load_tokenizer
from peerseq.losses import ctc_loss, label_smoothed_nll
from peerseq.metrics.asr import wer
from peerseq.models.presets import build
from peerseq.search.beam_search import beam_search, greedy_search
from peerseq.search.ctc import ctc_greedy
from peerseq.tokens import BOS

CTC_MAX_STEPS = 400
MT_MAX_STEPS = 400
EVAL_EVERY = 10


def _quiet(_: str) -> None:
    pass


def test_tiny_ctc_overfits_yesno(tmp_path: Path) -> None:
    out = tmp_path / "yn"
    prepare(PrepareArgs("yesno", out), log=_quiet)
    cuts = load_split(out, "train").subset(first=8)
    chars = load_tokenizer(out, "chars")
    batch = SpeechCollator({"transcript": FieldSpec("transcript", chars)}, "fbank80")(cuts)
    refs = [chars.normalize(t) for t in batch.texts["transcript"]]
    assert len(refs) == 8 and all(refs)

    torch.manual_seed(0)
    model = build("asr_transformer_ctc", "tiny", src_feats=80, vocab=chars.vocab_size)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    error, steps = 100.0, 0
    while steps < CTC_MAX_STEPS:
        model.train()
        out_ = model(batch.speech, batch.speech_lengths)
        loss = ctc_loss(
            out_.log_probs,
            out_.lengths,
            batch.tokens["transcript"],
            batch.lengths["transcript"],
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if steps % EVAL_EVERY == 0:
            model.eval()
            with torch.no_grad():
                out_ = model(batch.speech, batch.speech_lengths)
            hyps = [chars.decode(h) for h in ctc_greedy(out_.log_probs, out_.lengths)]
            error = wer(refs, hyps)
            if error == 0.0:
                break
    pairs = list(zip(refs, hyps, strict=True))
    assert error == 0.0, f"WER {error:.1f}% after {steps} steps: {pairs}"


def test_tiny_encoder_decoder_overfits_multi30k(tmp_path: Path) -> None:
    out = tmp_path / "m30k"
    # vocab_size is a soft limit: 20 sentences support fewer pieces than asked for
    prepare(PrepareArgs("multi30k", out, limit=20, vocab_size=200), log=_quiet)
    rows = load_text_split(out, "train")[:20]
    assert len(rows) == 20
    spm_en, spm_de = load_tokenizer(out, "spm_en"), load_tokenizer(out, "spm_de")
    source = FieldSpec("en", spm_en)
    target = FieldSpec("de", spm_de, add_eos=True)
    batch = TextCollator({"source": source, "target": target})(text_examples(rows, source))
    src, src_lengths = batch.tokens["source"], batch.lengths["source"]
    tgt, tgt_lengths = batch.tokens["target"], batch.lengths["target"]
    prev = torch.cat([torch.full((tgt.size(0), 1), BOS), tgt[:, :-1]], dim=1)
    refs = batch.texts["de"]

    torch.manual_seed(0)
    model = build("mt_transformer", "tiny", vocab=spm_de.vocab_size, src_vocab=spm_en.vocab_size)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    greedy: list[str] = []
    beam: list[str] = []
    steps = 0
    while steps < MT_MAX_STEPS:
        model.train()
        out_ = model(src, src_lengths, prev, tgt_lengths)
        loss, _ = label_smoothed_nll(out_.log_probs, tgt, out_.mask, epsilon=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if steps % EVAL_EVERY == 0:
            model.eval()
            greedy = [spm_de.decode(h.tokens) for h in greedy_search(model, src, src_lengths)]
            if greedy == refs:  # beam search only once greedy is right (it costs ~5x more)
                hyps = beam_search(model, src, src_lengths, beam=5)
                beam = [spm_de.decode(h[0].tokens) for h in hyps]
                if beam == refs:
                    break
    wrong = [(r, h) for r, h in zip(refs, greedy, strict=True) if r != h]
    assert not wrong, f"greedy: {len(wrong)} of 20 differ after {steps} steps: {wrong[:3]}"
    wrong = [(r, h) for r, h in zip(refs, beam, strict=True) if r != h]
    assert not wrong, f"beam: {len(wrong)} of 20 differ after {steps} steps: {wrong[:3]}"
