"""Copy a trained model's encoder (and front-end) into another model, e.g. an ASR-pretrained
encoder into an ST model (paper 000's ST models start from an ASR encoder, as fairseq's
load_pretrained_encoder_from does)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def load_encoder(
    dst_model: nn.Module,
    src: nn.Module | Mapping[str, torch.Tensor],
    prefix: str = "encoder.",
    frontend_prefix: str | None = "frontend.",
) -> list[str]:
    """Copy every parameter/buffer under `prefix` (and `frontend_prefix`, unless None) from `src`
    (a model or its state dict) into `dst_model`, in place. Returns the loaded keys, sorted.

    Both sides must hold exactly the same keys under those prefixes with the same shapes;
    otherwise a ValueError names the first offending key and nothing is copied.
    CTCModel and EncoderDecoder both name their parts `frontend` and `encoder`, so an ASR CTC
    model's encoder loads into an ST encoder-decoder of the same sizes.
    """
    src_state = src.state_dict() if isinstance(src, nn.Module) else src
    dst_state = dst_model.state_dict()
    prefixes = tuple(p for p in (prefix, frontend_prefix) if p)

    def select(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v for k, v in state.items() if k.startswith(prefixes)}

    src_sel, dst_sel = select(src_state), select(dst_state)
    if not dst_sel:
        raise ValueError(f"destination model has no keys under {prefixes}")
    for key in sorted(dst_sel):
        if key not in src_sel:
            raise ValueError(f"source has no {key!r} (destination expects it)")
        if src_sel[key].shape != dst_sel[key].shape:
            raise ValueError(
                f"shape mismatch for {key!r}: source {tuple(src_sel[key].shape)}, "
                f"destination {tuple(dst_sel[key].shape)}"
            )
    for key in sorted(src_sel):
        if key not in dst_sel:
            raise ValueError(f"destination has no {key!r} (source has it)")

    # state_dict() tensors share storage with the parameters/buffers, so copy_ loads in place
    with torch.no_grad():
        for key in sorted(dst_sel):
            dst_sel[key].copy_(src_sel[key])
    return sorted(dst_sel)
