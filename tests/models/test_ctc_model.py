import torch
import torch.nn.functional as F
from torch import nn

from peerseq.models.ctc_model import CTCModel
from peerseq.models.encoders import ConformerEncoder, LSTMEncoder, TransformerEncoder
from peerseq.models.frontends import Conv1dSubsampler, Conv2dSubsampler

V, FEATS = 12, 20
LENGTHS = torch.tensor([40, 17, 29])


def models():
    return [
        CTCModel(
            Conv2dSubsampler(FEATS, 32, channels=8),
            ConformerEncoder(32, 4, 64, layers=1, kernel_size=7),
            nn.Linear(32, V),
        ),
        CTCModel(
            Conv1dSubsampler(FEATS, 32, mid_channels=32),
            TransformerEncoder(32, 4, 64, layers=1),
            nn.Linear(32, V),
        ),
        CTCModel(
            Conv1dSubsampler(FEATS, 32, mid_channels=32, positions=False),
            LSTMEncoder(32, 16, layers=2, bidirectional=True),
            nn.Linear(32, V),
        ),
    ]


def test_seq_output_and_ctc_loss():
    torch.manual_seed(0)
    speech = torch.randn(3, 40, FEATS)
    for model in models():
        out = model(speech, LENGTHS)
        b, t, v = out.log_probs.shape
        assert (b, v) == (3, V) and out.mask.shape == (3, t)
        assert int(out.lengths.max()) == t and torch.equal(out.mask.sum(1), out.lengths)
        assert out.hidden.shape == (3, t, 32)
        torch.testing.assert_close(out.log_probs.exp().sum(-1), torch.ones(3, t))
        targets = torch.randint(1, V, (3, 4))  # blank=0 never a target
        loss = F.ctc_loss(
            out.log_probs.transpose(0, 1), targets, out.lengths, torch.tensor([4, 3, 4]), blank=0
        )
        loss.backward()
        assert torch.isfinite(loss)


def test_padding_does_not_change_valid_outputs():
    torch.manual_seed(0)
    speech = torch.randn(3, 40, FEATS) * 2
    for model in models():
        model.eval()
        out = model(speech, LENGTHS)
        for i, n in enumerate(LENGTHS.tolist()):
            alone = model(speech[i : i + 1, :n], LENGTHS[i : i + 1])
            m = int(out.lengths[i])
            assert int(alone.lengths[0]) == m
            torch.testing.assert_close(
                out.log_probs[i, :m], alone.log_probs[0, :m], atol=1e-5, rtol=1e-5
            )
