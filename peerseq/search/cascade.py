"""Cascade speech translation: ASR 1-best -> text -> MT beam search.

Tokenizers enter as callables (ids -> text, text -> ids), so this module knows no tokenizer class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from peerseq.models.incremental import IncrementalDecoding
from peerseq.models.output import SeqOutput
from peerseq.search.beam_search import Hypothesis, beam_search
from peerseq.search.ctc import ctc_greedy
from peerseq.tokens import EOS, PAD


@dataclass
class CascadeResult:
    """transcripts: ASR 1-best text per utterance; translations: MT k-best per utterance."""

    transcripts: list[str]
    translations: list[list[Hypothesis]]


def asr_1best(
    asr: IncrementalDecoding | Callable[[torch.Tensor, torch.Tensor], Any],
    speech: torch.Tensor,
    speech_lengths: torch.Tensor,
    beam: int = 5,
    max_len_a: float = 0.3,
    max_len_b: int = 10,
    len_penalty: float = 1.0,
) -> list[list[int]]:
    """Best ASR token ids per utterance, whatever the ASR model is.

    asr is one of
      - an encoder-decoder offering `decode_step` (IncrementalDecoding): beam search;
      - a CTC model, `asr(speech, speech_lengths) -> SeqOutput`: greedy CTC decoding;
      - any callable `asr(speech, speech_lengths) -> list[list[int]]` (e.g. prefix beam search).
    speech [B, T, F], speech_lengths [B]. max_len_a scales frames, hence the small default.
    """
    if hasattr(asr, "decode_step"):
        nbest = beam_search(
            asr, speech, speech_lengths, beam=beam, max_len_a=max_len_a,
            max_len_b=max_len_b, len_penalty=len_penalty,
        )  # fmt: skip
        return [h[0].tokens if h else [] for h in nbest]
    with torch.inference_mode():
        out = asr(speech, speech_lengths)
    if isinstance(out, SeqOutput):
        return ctc_greedy(out.log_probs, out.lengths)
    return [list(ids) for ids in out]


def pad_batch(seqs: Sequence[Sequence[int]], pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (ids [B, S] right-padded with `pad`, lengths [B])."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    ids = torch.full((len(seqs), max((len(s) for s in seqs), default=0)), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return ids, lengths


def cascade(
    asr_model: IncrementalDecoding | Callable[[torch.Tensor, torch.Tensor], Any],
    mt_model: IncrementalDecoding,
    speech: torch.Tensor,
    speech_lengths: torch.Tensor,
    asr_tokenizer_decode: Callable[[list[int]], str],
    mt_tokenizer_encode: Callable[[str], list[int]],
    beam: int = 5,
    asr_beam: int = 5,
    asr_max_len_a: float = 0.3,
    asr_max_len_b: int = 10,
    asr_len_penalty: float = 1.0,
    max_len_a: float = 1.2,
    max_len_b: int = 10,
    len_penalty: float = 1.0,
    k: int = 1,
) -> CascadeResult:
    """speech [B, T, F], speech_lengths [B] -> transcripts and MT k-best lists.

    mt_tokenizer_encode must return the source ids exactly as the MT model was trained to read
    them (e.g. with EOS appended if it was). asr_* apply to the ASR search (an encoder-decoder's;
    asr_max_len_a per input frame), max_len_* and len_penalty to the MT search;
    the MT model is expected on the same device as `speech`.
    """
    asr_ids = asr_1best(
        asr_model, speech, speech_lengths, beam=asr_beam, max_len_a=asr_max_len_a,
        max_len_b=asr_max_len_b, len_penalty=asr_len_penalty,
    )  # fmt: skip
    transcripts = [asr_tokenizer_decode(ids) for ids in asr_ids]
    # an empty source would leave attention with no valid key (NaN); give it a lone EOS instead
    src_ids = [mt_tokenizer_encode(text) or [EOS] for text in transcripts]
    src, src_lengths = (t.to(speech.device) for t in pad_batch(src_ids))
    translations = beam_search(
        mt_model, src, src_lengths, beam=beam, max_len_a=max_len_a, max_len_b=max_len_b,
        len_penalty=len_penalty, k=k,
    )  # fmt: skip
    return CascadeResult(transcripts, translations)
