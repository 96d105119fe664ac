import pytest
import torch

from peerseq.models.encoders import ConformerEncoder, LSTMEncoder, TransformerEncoder

LENGTHS = torch.tensor([13, 5, 9])


def make_encoders():
    return {
        "transformer": TransformerEncoder(32, 4, 64, layers=2),
        "conformer": ConformerEncoder(32, 4, 64, layers=2, kernel_size=7),
        "lstm": LSTMEncoder(32, 24, layers=2, bidirectional=False),
        "blstm": LSTMEncoder(32, 24, layers=2, bidirectional=True),
    }


OUT_DIM = {"transformer": 32, "conformer": 32, "lstm": 24, "blstm": 48}


@pytest.mark.parametrize("name", list(OUT_DIM))
def test_shapes_lengths_and_zero_padding(name):
    torch.manual_seed(0)
    enc = make_encoders()[name]
    x = torch.randn(3, 13, 32)
    y, lengths = enc(x, LENGTHS)
    assert y.shape == (3, 13, OUT_DIM[name]) and enc.out_dim == OUT_DIM[name]
    assert torch.equal(lengths, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        assert torch.all(y[i, n:] == 0)
    y.sum().backward()  # differentiable in train mode (dropout on)


@pytest.mark.parametrize("name", list(OUT_DIM))
def test_padding_does_not_change_valid_outputs(name):
    torch.manual_seed(0)
    enc = make_encoders()[name].eval()
    x = torch.randn(3, 13, 32) * 2  # padded frames are garbage on purpose
    y, _ = enc(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        alone, _ = enc(x[i : i + 1, :n], LENGTHS[i : i + 1])
        torch.testing.assert_close(y[i, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_transformer_attends_across_time():
    # guards against a mask that blocks everything but the diagonal
    torch.manual_seed(0)
    enc = TransformerEncoder(32, 4, 64, layers=1).eval()
    x = torch.randn(1, 6, 32)
    y, _ = enc(x, torch.tensor([6]))
    x2 = x.clone()
    x2[0, 5] = torch.randn(32)  # (a constant shift would vanish in LayerNorm)
    y2, _ = enc(x2, torch.tensor([6]))
    assert not torch.allclose(y[0, 0], y2[0, 0])


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        TransformerEncoder(30, 4, 64, layers=1)
    with pytest.raises(ValueError):
        ConformerEncoder(32, 4, 64, layers=1, kernel_size=8)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_lstm_encoder_equals_packed_nn_lstm(bidirectional):
    """The fused per-direction LSTM gives what nn.LSTM gives on packed sequences (padding never
    enters the recurrence), outputs and gradients, with zeros on padded frames."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    enc = LSTMEncoder(6, 5, layers=3, bidirectional=bidirectional, dropout=0.0)
    x = torch.randn(4, 9, 6, requires_grad=True)
    lengths = torch.tensor([9, 4, 7, 1])
    y, _ = enc(x, lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref, _ = pad_packed_sequence(enc.lstm(packed)[0], batch_first=True, total_length=9)
    assert y.shape == ref.shape == (4, 9, enc.out_dim)
    assert torch.allclose(y, ref, atol=1e-6)
    mask = torch.arange(9)[None, :] < lengths[:, None]
    assert (y[~mask] == 0).all()
    g = torch.Generator().manual_seed(1)
    w = torch.randn(y.shape, generator=g)
    gx, gw = torch.autograd.grad((enc(x, lengths)[0] * w).sum(), [x, enc.lstm.weight_hh_l1])
    rx, rw = torch.autograd.grad((ref * w).sum(), [x, enc.lstm.weight_hh_l1])
    assert torch.allclose(gx, rx, atol=1e-5) and torch.allclose(gw, rw, atol=1e-5)
    # a padded frame's content changes nothing on the valid frames
    x2 = x.detach().clone()
    x2[1, 6:] = 100.0
    assert torch.allclose(enc(x2, lengths)[0], y.detach(), atol=1e-6)
