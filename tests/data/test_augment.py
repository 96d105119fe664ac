"""Augmentation: each kind changes the features and keeps each utterance's text and a consistent
length; a batch's augmentation depends on its seed only (resume, workers) and leaves the global
generators alone."""

import random

import numpy as np
import pytest
import soundfile as sf
import torch

from peerseq.data.augment import Augmenter
from peerseq.data.batching import FieldSpec, SpeechCollator, speech_sampler
from peerseq.data.config import AugmentConfig, DataConfig, FieldConfig
from peerseq.data.loader import epoch_batches
from peerseq.data.manifest import load_split
from peerseq.data.pipeline import Data
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.tokenizers import CharTokenizer
from peerseq.errors import PeerseqError
from peerseq.typed import from_dict

FIELDS = {"transcript": FieldSpec("transcript", CharTokenizer())}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, bundled):
    """fsdd-connected from 40 FSDD recordings (several digits an utterance)."""
    import shutil

    root = tmp_path_factory.mktemp("aug")
    src = root / "fsdd" / "recordings"
    src.mkdir(parents=True)
    for spk in ("george", "theo"):
        for digit in range(4):
            for idx in (0, 1, 5, 6, 11, 12, 13, 14):
                name = f"{digit}_{spk}_{idx}.wav"
                shutil.copy(bundled / "fsdd" / "recordings" / name, src / name)
    out = root / "c"
    prepare(
        PrepareArgs("fsdd-connected", out, src=src.parent, sizes={"train": 12, "dev": 2, "test": 2})
    )
    return out


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    """Brown noise (integrated white noise), made here: 3 s at 16 kHz."""
    folder = tmp_path_factory.mktemp("noise")
    w = np.cumsum(np.random.default_rng(0).standard_normal(48000))
    w = 0.3 * (w - w.mean()) / np.abs(w - w.mean()).max()
    sf.write(folder / "brown.wav", w.astype(np.float32), 16000)
    return folder


def _by_id(batch):
    lens = dict(zip(batch.ids, batch.speech_lengths.tolist(), strict=True))
    texts = dict(zip(batch.ids, batch.texts["transcript"], strict=True))
    feats = {i: batch.speech[k, : lens[i]] for k, i in enumerate(batch.ids)}
    return lens, texts, feats


def _config(kind, noise_dir):
    return {
        "speed": {"speed": [0.9]},
        "volume": {"volume": [0.2, 0.3], "volume_p": 1.0},
        "noise": {"noise": {"source": str(noise_dir), "snr": [0.0], "p": 1.0}},
        "specaugment": {"specaugment": {"p": 1.0, "time_warp": 5}},
    }[kind]


@pytest.mark.parametrize("kind", ["speed", "volume", "noise", "specaugment"])
def test_each_augmentation_changes_features_and_keeps_text_and_lengths(kind, corpus, noise_dir):
    cuts = load_split(corpus, "train").to_eager()
    cfg = from_dict(AugmentConfig, _config(kind, noise_dir))
    # CMVN off: a volume change would be normalised away
    plain = SpeechCollator(FIELDS, cmvn=False)(cuts, random.Random(1))
    aug = SpeechCollator(FIELDS, cmvn=False, augment=Augmenter(cfg))
    first, again = aug(cuts, random.Random(1)), aug(cuts, random.Random(1))
    assert torch.equal(first.speech, again.speech)  # the batch's generator decides everything
    lens0, texts0, feats0 = _by_id(plain)
    lens1, texts1, feats1 = _by_id(first)
    assert texts1 == texts0  # every utterance keeps its id and its text
    assert torch.equal(first.tokens["transcript"], again.tokens["transcript"])
    if kind == "speed":  # 0.9x speed: 1/0.9 times the frames
        for i, n in lens0.items():
            assert abs(lens1[i] - n / 0.9) <= 2, (i, n, lens1[i])
    else:
        assert lens1 == lens0
        assert all((feats1[i] != feats0[i]).any() for i in lens0)
        assert first.ids == plain.ids  # same lengths, same order: padding as the collator's
        valid = torch.arange(plain.speech.size(1))[None, :] < plain.speech_lengths[:, None]
        assert torch.equal(first.speech[~valid], plain.speech[~valid])
    if kind != "specaugment":
        other = aug(cuts, random.Random(2))
        assert not torch.equal(other.speech, first.speech) or kind == "speed"


def test_specaugment_leaves_the_global_generators_alone(corpus):
    cuts = load_split(corpus, "train").to_eager()
    specaugment = from_dict(AugmentConfig, {"specaugment": {"p": 1.0, "time_warp": 5}})
    aug = SpeechCollator(FIELDS, augment=Augmenter(specaugment))

    def draws():
        return torch.rand(3).tolist(), random.random(), np.random.rand()

    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    expected = draws()
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    aug(cuts, random.Random(1))
    assert draws() == expected


def test_augmented_batches_are_the_same_after_a_resume_and_in_a_worker(corpus, noise_dir):
    cuts = load_split(corpus, "train").to_eager()
    cfg = from_dict(
        AugmentConfig,
        {"speed": [0.9, 1.0, 1.1], "volume": [0.5, 2.0], **_config("noise", noise_dir)}
        | {"specaugment": {"p": 1.0}},
    )
    collate = SpeechCollator(FIELDS, augment=Augmenter(cfg))

    def run(skip, workers):
        sampler = speech_sampler(cuts, 800, shuffle=True, seed=3)
        sampler.set_epoch(2)
        return list(epoch_batches(sampler, collate, 3, 2, skip=skip, workers=workers))

    whole = run(0, 0)
    assert len(whole) >= 4
    for got, want in zip(run(2, 0), whole[2:], strict=True):
        assert got.ids == want.ids and torch.equal(got.speech, want.speech)
    for got, want in zip(run(0, 1), whole, strict=True):
        assert got.ids == want.ids and torch.equal(got.speech, want.speech)


def test_training_reads_audio_only_when_the_augmentation_changes_it(corpus):
    fields = {"transcript": FieldConfig("transcript", "chars")}
    spec = Data(
        DataConfig(str(corpus), fields, augment=from_dict(AugmentConfig, {"specaugment": {}})), 1
    )
    assert all(c.has_features for b in spec.sampler("train", True) for c in b)
    speed = Data(DataConfig(str(corpus), fields, augment=AugmentConfig(speed=[0.9, 1.1])), 1)
    assert not any(c.has_features for b in speed.sampler("train", True) for c in b)
    assert all(c.has_features for b in speed.sampler("dev", False) for c in b)  # never augmented
    assert speed.collator(False).augment is None and speed.collator(True).augment is not None


def test_bad_augmentation_settings_are_named(tmp_path):
    with pytest.raises(PeerseqError, match="volume: expected \\[low, high\\]"):
        from_dict(AugmentConfig, {"volume": [0.5, 1.0, 2.0]})
    with pytest.raises(PeerseqError, match="speed"):
        from_dict(AugmentConfig, {"speed": [0.0]})
    with pytest.raises(PeerseqError, match="augment.noise.source: .*no such file"):
        Augmenter(from_dict(AugmentConfig, {"noise": {"source": str(tmp_path / "nope")}}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PeerseqError, match="holds no audio files"):
        Augmenter(from_dict(AugmentConfig, {"noise": {"source": str(tmp_path / "empty")}}))
