import pytest
import torch
from torch import nn

from peerseq.metrics.cost import count_flops, count_parameters, flops_per_second_of_audio


class ConvLSTM(nn.Module):
    """A small CTC-style acoustic model: conv subsampling, BLSTM, output layer."""

    def __init__(self, feat_dim=40, hidden=96, vocab=50):
        super().__init__()
        self.conv = nn.Conv1d(feat_dim, hidden, kernel_size=3, stride=2)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, vocab)

    def forward(self, x, lengths):  # x [B, T, F]
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)  # [B, T', H]
        return self.out(self.lstm(x)[0])


def test_count_parameters():
    m = nn.Linear(4, 3)
    assert count_parameters(m) == 15
    m.bias.requires_grad_(False)
    assert count_parameters(m, trainable_only=True) == 12
    shared = nn.Sequential(m, m)
    assert count_parameters(shared) == 15


def test_linear_and_conv_exact():
    lin = nn.Linear(10, 20)
    assert count_flops(lambda: lin(torch.randn(3, 7, 10)), lin) == 2 * 3 * 7 * 10 * 20
    conv = nn.Conv1d(8, 16, 3)
    assert count_flops(lambda: conv(torch.randn(1, 8, 12)), conv) == 2 * 10 * 16 * 8 * 3


def test_lstm_added_analytically_and_gru_not_twice():
    lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
    per_frame = 2 * (2 * 4 * 20 * (10 + 20)) + 2 * (2 * 4 * 20 * (40 + 20))
    assert count_flops(lambda: lstm(torch.randn(2, 5, 10)), lstm) == per_frame * 10
    gru = nn.GRU(10, 20, batch_first=True)
    assert count_flops(lambda: gru(torch.randn(1, 5, 10)), gru) == 2 * 3 * 20 * 30 * 5
    packed = nn.utils.rnn.pack_padded_sequence(
        torch.randn(2, 5, 10), torch.tensor([5, 2]), batch_first=True
    )
    assert count_flops(lambda: lstm(packed), lstm) == per_frame * 7


def test_attention_matmuls_counted():
    mha = nn.MultiheadAttention(16, 2, batch_first=True)
    q = torch.randn(1, 5, 16)
    proj = 2 * 5 * 16 * 16 * 4  # q, k, v, out projections
    scores = 2 * 2 * (5 * 5 * 8) * 2  # q k^T and att v, per head
    assert count_flops(lambda: mha(q, q, q), mha) == proj + scores


def test_agrees_with_ptflops():
    import ptflops  # a dev dependency (pyproject.toml): missing, the test fails, not skips

    model = ConvLSTM().eval()
    ours = flops_per_second_of_audio(model, feat_dim=40)
    macs, _ = ptflops.get_model_complexity_info(
        model,
        (100, 40),
        input_constructor=lambda res: {"x": torch.randn(1, *res), "lengths": torch.tensor([100])},
        as_strings=False,
        print_per_layer_stat=False,
        backend="pytorch",
    )
    # ptflops counts MACs plus bias and gate element-wise ops; we count 2 * MACs only
    assert ours == pytest.approx(2 * macs, rel=0.03)
    assert model.training is False


def test_transformer_fast_path_is_counted():
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(1, 5, 16)
    proj = 2 * 5 * 16 * 16 * 4
    scores = 2 * 2 * (5 * 5 * 8) * 2
    ffn = 2 * 5 * 16 * 32 * 2
    assert flops_per_second_of_audio(enc, 16, 5, forward=lambda m, x, n: m(x)) == 2 * (
        proj + scores + ffn
    )
    assert count_flops(lambda: enc(x), enc) == 2 * (proj + scores + ffn)
    assert torch.backends.mha.get_fastpath_enabled()


def test_cpu_sdpa_counted():
    q = torch.randn(2, 3, 5, 8)
    k = torch.randn(2, 3, 7, 8)
    got = count_flops(lambda: nn.functional.scaled_dot_product_attention(q, k, k))
    assert got == 2 * (2 * 3 * 5 * 7 * 8) * 2


def test_lstm_encoder_directions_counted():
    """LSTMEncoder runs each direction through torch.lstm (oneDNN's layer on CPU): the same
    FLOPs as the nn.LSTM it holds, counted once."""
    from peerseq.models.encoders import LSTMEncoder

    enc = LSTMEncoder(10, 20, layers=2, bidirectional=True, dropout=0.0).eval()
    x, lengths = torch.randn(3, 7, 10), torch.tensor([7, 5, 2])
    per_frame = 2 * (2 * 4 * 20 * (10 + 20) + 2 * 4 * 20 * (40 + 20))
    assert count_flops(lambda: enc(x, lengths), enc) == per_frame * 3 * 7
