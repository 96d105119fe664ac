"""Every named model, in one table: build("st_transformer", size="small", src_feats=80, vocab=8000).

PRESETS maps a name to its sizes ("paper", "small", "tiny"), each a small dataclass; BUILDERS maps
the same name to the function that assembles modules from it and the ModelDims a run gives it
(feature and vocabulary sizes; for a model on top of another, that model). A new model is one
entry in each table. Sizes:
  paper: the numbers of the paper the preset comes from (see each builder's docstring);
  small: trains in minutes on a 2-core CPU;
  tiny:  for tests (d=32, one or two layers).
Any dataclass field can be overridden: build("mt_transformer", "small", vocab=8000, dropout=0.3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from peerseq.metrics.cost import count_parameters  # noqa: F401 (one counter, re-exported)
from peerseq.models import recurrent_ctc
from peerseq.models.ctc_model import CTCModel
from peerseq.models.decoder import TransformerDecoder
from peerseq.models.em_auxiliary import EMConfig, em_network
from peerseq.models.encoder_decoder import EncoderDecoder
from peerseq.models.encoders import ConformerEncoder, TransformerEncoder
from peerseq.models.frontends import Conv1dSubsampler, Conv2dSubsampler, TokenEmbedding


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a Transformer encoder(-decoder); dec_layers=0 for encoder-only (CTC) models."""

    d_model: int
    heads: int
    ffn: int
    enc_layers: int
    dec_layers: int
    dropout: float = 0.1
    conv_channels: int = 1024  # Conv1dSubsampler's mid channels (speech front-ends only)
    tie_embeddings: bool = True  # decoder input embedding == output layer weight


@dataclass(frozen=True)
class ConformerConfig:
    """Sizes of a Conformer-CTC model (Conv2dSubsampler with d_model channels)."""

    d_model: int
    heads: int
    ffn: int
    layers: int
    conv_kernel: int = 31
    dropout: float = 0.1


@dataclass(frozen=True)
class ModelDims:
    """What a run tells a builder: src_feats, the speech feature dimension; vocab, the target
    vocabulary (CTC: including blank=0); src_vocab, an MT source vocabulary (None: vocab, joint);
    ctc_vocab, a CTC head of that size on an encoder-decoder's encoder; upstream, the model this
    one sits on (EM-Network's auxiliary network)."""

    src_feats: int = 80
    vocab: int = 8000
    src_vocab: int | None = None
    ctc_vocab: int | None = None
    upstream: nn.Module | None = None


_SPEECH_ENC_DEC = {
    # paper 000, 3.2: 2 1-D convs (k5, s2), 12 encoder / 6 decoder layers, d 512, ffn 2048;
    # 8 heads and 1024 conv channels as fairseq's s2t_transformer_m, which those numbers match.
    "paper": TransformerConfig(512, 8, 2048, 12, 6, conv_channels=1024),
    "small": TransformerConfig(256, 4, 1024, 6, 3, conv_channels=512),
    "tiny": TransformerConfig(32, 2, 64, 2, 1, dropout=0.0, conv_channels=32),
}

PRESETS: dict[str, dict[str, TransformerConfig | ConformerConfig]] = {
    "st_transformer": _SPEECH_ENC_DEC,
    "asr_transformer": _SPEECH_ENC_DEC,  # the cascade's ASR: same shape as the ST model
    "mt_transformer": {
        # paper 000, 3.2: 12 encoder / 6 decoder layers with ffn 2048; d 512, 8 heads
        "paper": TransformerConfig(512, 8, 2048, 12, 6),
        "small": TransformerConfig(256, 4, 1024, 4, 3),
        "tiny": TransformerConfig(32, 2, 64, 1, 1, dropout=0.0),
    },
    "asr_transformer_ctc": {
        # the ST encoder of paper 000 with a CTC head, so its encoder loads into st_transformer
        "paper": TransformerConfig(512, 8, 2048, 12, 0, conv_channels=1024),
        "small": TransformerConfig(256, 4, 1024, 6, 0, conv_channels=512),
        "tiny": TransformerConfig(32, 2, 64, 2, 0, dropout=0.0, conv_channels=32),
    },
    "asr_conformer_ctc": {
        # paper 002, appendix D: Conformer-CTC, 16 blocks of d 176 (NeMo "small": 4 heads,
        # ffn 4 x d, conv kernel 31), ~13 M parameters
        "paper": ConformerConfig(176, 4, 704, 16, 31),
        "small": ConformerConfig(144, 4, 576, 6, 15),
        "tiny": ConformerConfig(32, 2, 64, 2, 7, dropout=0.0),
    },
    "aed_transformer": {
        # paper 002's IWSLT'14 MT Transformer (fairseq transformer_iwslt_de_en):
        # 6 + 6 layers, d 512, ffn 1024, 4 heads
        "paper": TransformerConfig(512, 4, 1024, 6, 6),
        "small": TransformerConfig(256, 4, 1024, 3, 3),
        "tiny": TransformerConfig(32, 2, 64, 1, 1, dropout=0.0),
    },
    # paper 003's teachers and students (peerseq.models.recurrent_ctc has the reading)
    **recurrent_ctc.SIZES,
    # paper 002's auxiliary network on top of an earlier peer's model (`reads: "@peer"`)
    "em_network": {"paper": EMConfig(), "small": EMConfig(), "tiny": EMConfig()},
}


def _encoder_decoder(
    cfg: TransformerConfig, frontend: nn.Module, vocab: int, ctc_vocab: int | None
) -> EncoderDecoder:
    d = cfg.d_model
    return EncoderDecoder(
        frontend,
        TransformerEncoder(d, cfg.heads, cfg.ffn, cfg.enc_layers, cfg.dropout),
        TransformerDecoder(vocab, d, cfg.heads, cfg.ffn, cfg.dec_layers, cfg.dropout),
        nn.Linear(d, vocab, bias=False),
        ctc_head=nn.Linear(d, ctc_vocab) if ctc_vocab else None,
        tie_embeddings=cfg.tie_embeddings,
    )


def speech_transformer(cfg: TransformerConfig, dims: ModelDims) -> EncoderDecoder:
    """Conv1dSubsampler + Transformer encoder-decoder (ST, or ASR with a text vocabulary)."""
    frontend = Conv1dSubsampler(dims.src_feats, cfg.d_model, cfg.conv_channels, dropout=cfg.dropout)
    return _encoder_decoder(cfg, frontend, dims.vocab, dims.ctc_vocab)


def text_transformer(cfg: TransformerConfig, dims: ModelDims) -> EncoderDecoder:
    """TokenEmbedding + Transformer encoder-decoder (MT). src_vocab defaults to vocab (joint)."""
    frontend = TokenEmbedding(dims.src_vocab or dims.vocab, cfg.d_model, cfg.dropout)
    return _encoder_decoder(cfg, frontend, dims.vocab, dims.ctc_vocab)


def transformer_ctc(cfg: TransformerConfig, dims: ModelDims) -> CTCModel:
    """Conv1dSubsampler + Transformer encoder + Linear to vocab (blank=0)."""
    d = cfg.d_model
    return CTCModel(
        Conv1dSubsampler(dims.src_feats, d, cfg.conv_channels, dropout=cfg.dropout),
        TransformerEncoder(d, cfg.heads, cfg.ffn, cfg.enc_layers, cfg.dropout),
        nn.Linear(d, dims.vocab),
    )


def conformer_ctc(cfg: ConformerConfig, dims: ModelDims) -> CTCModel:
    """Conv2dSubsampler (x4) + Conformer encoder + Linear to vocab (blank=0)."""
    d = cfg.d_model
    return CTCModel(
        Conv2dSubsampler(dims.src_feats, d, dropout=cfg.dropout),
        ConformerEncoder(d, cfg.heads, cfg.ffn, cfg.layers, cfg.conv_kernel, cfg.dropout),
        nn.Linear(d, dims.vocab),
    )


BUILDERS: dict[str, Callable[[object, ModelDims], nn.Module]] = {
    "st_transformer": speech_transformer,
    "asr_transformer": speech_transformer,
    "mt_transformer": text_transformer,
    "asr_transformer_ctc": transformer_ctc,
    "asr_conformer_ctc": conformer_ctc,
    "aed_transformer": text_transformer,
    **dict.fromkeys(recurrent_ctc.SIZES, recurrent_ctc.recurrent_ctc),
    "em_network": em_network,
}


def has_field(name: str, field: str) -> bool:
    """Whether preset `name`'s config has `field` (what overrides and model settings may set)."""
    sizes = PRESETS.get(name, {})
    return any(field in {f.name for f in dataclasses.fields(c)} for c in sizes.values())


def build(
    name: str,
    size: str = "small",
    *,
    src_feats: int = 80,
    vocab: int = 8000,
    src_vocab: int | None = None,
    ctc_vocab: int | None = None,
    upstream: nn.Module | None = None,
    **overrides,
) -> nn.Module:
    """Build preset `name` at `size`.

    src_feats: speech feature dimension (speech models); vocab: target vocabulary (CTC: including
    blank=0); src_vocab: MT source vocabulary (default: vocab, a joint vocabulary);
    ctc_vocab: adds a CTC head of that size on an encoder-decoder's encoder; upstream: the model
    an EM-Network's auxiliary network sits on.
    overrides: replace fields of the preset's dataclass (e.g. dropout=0.3, enc_layers=4).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    if size not in PRESETS[name]:
        raise ValueError(f"preset {name!r} has no size {size!r}; known: {sorted(PRESETS[name])}")
    cfg = PRESETS[name][size]
    fields = {f.name for f in dataclasses.fields(cfg)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(
            f"unknown overrides {sorted(unknown)} for {name!r}; fields: {sorted(fields)}"
        )
    cfg = dataclasses.replace(cfg, **overrides)
    return BUILDERS[name](cfg, ModelDims(src_feats, vocab, src_vocab, ctc_vocab, upstream))
