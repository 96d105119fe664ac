import math

import pytest
import torch

from peerseq.models.frontends import (
    Conv1dSubsampler,
    Conv2dSubsampler,
    TokenEmbedding,
    sinusoidal_positions,
)

LENGTHS = torch.tensor([23, 9, 16])


def padded_speech(lengths, feats=20):
    """Random features; padded frames hold garbage (not zeros) so leaks would show."""
    return torch.randn(len(lengths), int(lengths.max()), feats) * 3


@pytest.mark.parametrize("activation", ["glu", "relu"])
def test_conv1d_shapes_and_lengths(activation):
    torch.manual_seed(0)
    sub = Conv1dSubsampler(20, 32, mid_channels=24, activation=activation)
    y, lengths = sub(padded_speech(LENGTHS), LENGTHS)
    # kernel 5, stride 2, padding 2 twice: ceil(ceil(T / 2) / 2)
    expected = torch.tensor([math.ceil(math.ceil(t / 2) / 2) for t in LENGTHS.tolist()])
    assert torch.equal(lengths, expected)
    assert y.shape == (3, int(expected.max()), 32)


def test_conv2d_shapes_and_lengths():
    torch.manual_seed(0)
    sub = Conv2dSubsampler(20, 32, channels=8)
    y, lengths = sub(padded_speech(LENGTHS), LENGTHS)
    expected = torch.tensor([((t - 1) // 2 - 1) // 2 for t in LENGTHS.tolist()])
    assert torch.equal(lengths, expected)
    assert y.shape == (3, int(expected.max()), 32)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv1dSubsampler(20, 32, mid_channels=24),
        lambda: Conv1dSubsampler(20, 32, mid_channels=24, activation="relu", positions=False),
        lambda: Conv2dSubsampler(20, 32, channels=8),
    ],
)
def test_subsampler_padding_does_not_change_valid_outputs(make):
    torch.manual_seed(0)
    sub = make().eval()
    x = padded_speech(LENGTHS)
    y, out_lengths = sub(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        alone, alone_len = sub(x[i : i + 1, :n], LENGTHS[i : i + 1])
        m = int(out_lengths[i])
        assert int(alone_len) == m
        torch.testing.assert_close(y[i, :m], alone[0, :m], atol=1e-5, rtol=1e-5)


def test_token_embedding_front_end_and_offset_positions():
    torch.manual_seed(0)
    emb = TokenEmbedding(11, 16, dropout=0.0).eval()
    tokens = torch.randint(4, 11, (2, 7))
    lengths = torch.tensor([7, 4])
    x, out_lengths = emb(tokens, lengths)
    assert x.shape == (2, 7, 16) and out_lengths is lengths
    # embedding the suffix with start=3 equals the suffix of the full embedding (incremental use)
    torch.testing.assert_close(emb.embed(tokens[:, 3:], start=3), x[:, 3:])
    # pad rows embed to the bare positions
    pad = emb.embed(torch.zeros(1, 3, dtype=torch.long))
    torch.testing.assert_close(pad[0], sinusoidal_positions(3, 16))


def test_sinusoidal_positions_values():
    pe = sinusoidal_positions(5, 8)
    assert pe.shape == (5, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))
    torch.testing.assert_close(pe[3, 0], torch.tensor(math.sin(3.0)))
    with pytest.raises(ValueError):
        sinusoidal_positions(5, 7)


def test_conv2d_subsampler_first_convolution_is_the_same_convolution():
    """On a CPU the one-channel convolution runs on torch's own kernel: the output and the
    weight gradient are nn.Conv2d's (oneDNN's), within 1e-5."""
    torch.manual_seed(0)
    sub = Conv2dSubsampler(40, 16, channels=8).eval()  # no dropout; gradients all the same
    x, lengths = torch.randn(3, 50, 40), torch.tensor([50, 41, 30])
    ours, _ = sub(x, lengths)
    ours.square().sum().backward()
    grad = sub.conv[0].weight.grad.clone()
    sub.zero_grad()
    conv = sub.conv(x.unsqueeze(1))
    b, c, t, f = conv.shape
    ref = sub.pos(sub.proj(conv.transpose(1, 2).reshape(b, t, c * f)))
    ref.square().sum().backward()
    assert float((ours - ref).detach().abs().max()) <= 1e-5
    assert float((grad - sub.conv[0].weight.grad).abs().max()) <= 1e-4 * float(grad.abs().max())
