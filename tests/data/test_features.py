import torch
from lhotse import CutSet

from peerseq.data.features import extractor, feature_dim, precomputed, utterance_cmvn
from peerseq.data.prepare import PrepareArgs, prepare


def test_feature_kinds(tmp_path):
    prepare(PrepareArgs("yesno", tmp_path / "yn"))
    cut = CutSet.from_file(tmp_path / "yn" / "cuts_dev.jsonl.gz")[0]
    for kind, dim in (("fbank80", 80), ("spec201", 201)):
        feats = cut.compute_features(extractor(kind))
        assert feats.shape[1] == dim == feature_dim(kind)
        assert abs(feats.shape[0] - cut.duration * 100) <= 2  # 10 ms shift


def test_precomputed_features_are_cached(tmp_path):
    prepare(PrepareArgs("yesno", tmp_path / "yn"))
    cuts = precomputed(tmp_path / "yn", "dev", "fbank80")
    assert all(c.has_features for c in cuts)
    stamp = (tmp_path / "yn" / "features_fbank80" / "dev" / "cuts.jsonl.gz").stat().st_mtime_ns
    again = precomputed(tmp_path / "yn", "dev", "fbank80")
    assert (
        tmp_path / "yn" / "features_fbank80" / "dev" / "cuts.jsonl.gz"
    ).stat().st_mtime_ns == stamp
    x, y = cuts[0].load_features(), again[0].load_features()
    assert x.shape == y.shape and abs(x - y).max() == 0


def test_utterance_cmvn_normalises_valid_frames_only():
    x = torch.randn(3, 50, 4) * 5 + 3
    lengths = torch.tensor([50, 20, 7])
    y = utterance_cmvn(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        v = y[b, :n]
        assert torch.allclose(v.mean(0), torch.zeros(4), atol=1e-4)
        assert torch.allclose(v.std(0, unbiased=False), torch.ones(4), atol=1e-3)
        assert (y[b, n:] == 0).all()
