"""Model cost: parameter counts and forward FLOPs per second of audio.

FLOPs are counted by PyTorch's own `torch.utils.flop_counter.FlopCounterMode`, which sees every
matmul, addmm/bmm, convolution and scaled-dot-product attention (so nn.Linear, nn.Conv1d/2d,
nn.GRU on CPU, nn.MultiheadAttention, nn.TransformerEncoderLayer (its fused inference fast path
is switched off while counting) and hand-written attention are all covered). The CPU kernel of
F.scaled_dot_product_attention gets torch's own SDPA formula, which torch does not register for
it. The counter counts 2 FLOPs per multiply-accumulate and ignores element-wise ops, bias
additions and activations.
oneDNN's LSTM layer (what torch.lstm runs on CPU) gets the formula below through a custom
mapping. nn.LSTM (and RNN/GRU when they run as one fused kernel) dispatch to other ops it cannot
see, so a forward hook adds their matmul FLOPs analytically, only when the counter saw nothing
during that module's forward (so they are never counted twice):
    2 * G * H * (I_l + H_r) per frame, layer and direction,
G = gates (LSTM 4, GRU 3, RNN 1), I_l = layer input size (input_size, then H_r * directions),
H_r = recurrent size (proj_size if set, plus 2 * H * P per frame for the projection).
ptflops reports MACs (and adds bias and gate element-wise ops), so its figure times 2 is
ours within a few percent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _rnn_flops(rnn: nn.RNNBase, inp: Any) -> int:
    """Analytic matmul FLOPs of one forward of an nn.LSTM/GRU/RNN on `inp`."""
    if isinstance(inp, nn.utils.rnn.PackedSequence):
        steps = int(inp.data.size(0))  # sum of lengths: padded frames are not computed
    else:
        x = inp if rnn.batch_first or inp.dim() == 2 else inp.transpose(0, 1)
        steps = int(x.shape[:-1].numel())  # B * T (or T unbatched)
    gates = _GATES[type(rnn)]
    h = rnn.hidden_size
    h_r = rnn.proj_size if getattr(rnn, "proj_size", 0) else h
    dirs = 2 if rnn.bidirectional else 1
    per_step = 0
    for layer in range(rnn.num_layers):
        i_l = rnn.input_size if layer == 0 else h_r * dirs
        per_step += dirs * 2 * gates * h * (i_l + h_r)
        if h_r != h:
            per_step += dirs * 2 * h * h_r
    return per_step * steps


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _mkldnn_rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kw) -> int:
    """One direction of one layer through oneDNN (what torch.lstm runs on CPU, e.g. in
    peerseq.models.encoders.LSTMEncoder): 2 * G * H * (I + H) per frame, frames = B * T."""
    gates_h, i = w_ih_shape
    steps = 1
    for d in input_shape[:-1]:
        steps *= d
    return 2 * gates_h * (i + w_hh_shape[1]) * steps


# scaled_dot_product_attention's CPU kernel and oneDNN's LSTM layer have no formula in torch's
# registry (2.13)
_CUSTOM = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
    torch.ops.aten.mkldnn_rnn_layer: _mkldnn_rnn_layer_flop,
}


def count_flops(fn: Callable[[], Any], modules: nn.Module | None = None) -> int:
    """FLOPs (2 per multiply-accumulate) of calling fn(); recurrent layers found in `modules`
    that the counter cannot see are added analytically (module docstring)."""
    counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM)
    extra = [0]
    handles = []
    if modules is not None:
        for m in modules.modules():
            if type(m) in _GATES:
                seen: list[int] = []

                def pre(mod, args, seen=seen):
                    seen.append(counter.get_total_flops())

                def post(mod, args, out, seen=seen):
                    if counter.get_total_flops() == seen.pop():
                        extra[0] += _rnn_flops(mod, args[0])

                handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    # nn.TransformerEncoderLayer/MultiheadAttention's inference fast path is one fused op the
    # counter cannot see; the regular path computes the same thing with visible matmuls
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter, torch.no_grad():
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for h in handles:
            h.remove()
    return int(counter.get_total_flops()) + extra[0]


def flops_per_second_of_audio(
    model: nn.Module,
    feat_dim: int = 80,
    feats_per_second: int = 100,
    forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], Any] | None = None,
) -> int:
    """FLOPs of one forward over one second of random features x [1, feats_per_second, feat_dim].

    forward(model, x, lengths) runs the model; default `model(x, lengths)`. For encoder-decoders
    pass e.g. `lambda m, x, n: m.encode(x, n)`: decoder cost depends on output length, not audio.
    """
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.randn(1, feats_per_second, feat_dim, device=device)
    lengths = torch.tensor([feats_per_second], device=device)
    run = forward or (lambda m, x, n: m(x, n))
    was_training = model.training
    model.eval()
    try:
        return count_flops(lambda: run(model, x, lengths), model)
    finally:
        model.train(was_training)
