"""peerseq: collaborative training of ASR, ST and MT models."""

__version__ = "0.1.0"


def load(model, peer=None, weights="best", device="auto", onnx=False):
    """A trained model ready to use (peerseq.inference.load): `.transcribe(paths)` for speech
    models, `.translate(paths_or_texts)` for ST and MT models."""
    from peerseq.inference import load as _load

    return _load(model, peer, weights, device, onnx)
