import numpy as np
import pytest
import soundfile as sf

from peerseq.data.audio import check_audio
from peerseq.errors import DataError


def _wav(path, samples, sr=16000, subtype="PCM_16"):
    sf.write(path, samples, sr, subtype=subtype)
    return path


def test_good_file(tmp_path):
    info = check_audio(_wav(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1))
    assert info.num_samples == 1600 and info.sampling_rate == 16000 and info.duration == 0.1


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: None, "audio file not found"),
        (lambda p: p.write_bytes(b"this is not audio"), "not a readable audio file"),
        (lambda p: p.write_bytes(b""), "not a readable audio file"),
        (lambda p: _wav(p, np.zeros(0, np.float32)), "empty audio"),
        (
            lambda p: _wav(p, np.array([0.1, np.nan, 0.2] * 100, np.float32), subtype="FLOAT"),
            "NaN or infinite",
        ),
        (
            lambda p: _wav(p, np.array([0.1, np.inf] * 100, np.float32), subtype="FLOAT"),
            "NaN or infinite",
        ),
        (lambda p: _wav(p, np.zeros((800, 2), np.float32)), "expected 1 channel(s), found 2"),
    ],
)
def test_bad_audio_names_the_file(tmp_path, make, expected):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError) as e:
        check_audio(path)
    assert str(path) in str(e.value) and expected in str(e.value)


def test_truncated_wav(tmp_path):
    path = _wav(tmp_path / "t.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 16000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # libsndfile alone reads the first half without complaint; check_audio must not.
    assert sf.info(str(path)).frames > 0
    with pytest.raises(DataError, match="truncated WAV file"):
        check_audio(path)
