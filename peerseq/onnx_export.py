"""ONNX for the inference path of CTC models (`peerseq export ... --format onnx`).

The graph: features [B, T, F] float32 and their lengths [B] int64 -> CTC log-probabilities
[B, T', V] and output lengths [B], with batch and time dynamic; everything before it (reading
audio, features, CMVN) and after it (greedy CTC, the tokenizer) is what `peerseq.inference`
does for the PyTorch model, so the two give the same transcripts. Exported with torch's dynamo
exporter (torch.onnx.export(dynamo=True), which needs onnxscript); run with onnxruntime. The
optional extra `pip install 'peerseq[onnx]'` brings the three.

Encoder-decoders (a decoder step with its cache) are not exported yet.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from peerseq.errors import PeerseqError

ONNX_NAME = "model.onnx"


class _CTCGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor):
        out = self.model(speech, lengths)
        return out.log_probs, out.lengths


def export_ctc(model: nn.Module, feats: int, path: Path) -> Path:
    """Write the CTC model's inference graph to path (eval mode, on the CPU)."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it; say so here, not deep inside)
    except ImportError:
        raise PeerseqError(
            "--format onnx needs onnx, onnxruntime and onnxscript: pip install 'peerseq[onnx]'"
        ) from None
    graph = _CTCGraph(model).eval().cpu()
    speech, lengths = torch.randn(2, 200, feats), torch.tensor([200, 150])
    batch, frames = torch.export.Dim("batch"), torch.export.Dim("frames", min=16, max=1_000_000)
    quiet = logging.getLogger("torch.onnx")  # its notes (e.g. "torchvision is not installed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notes
        torch.onnx.export(
            graph,
            (speech, lengths),
            str(path),
            dynamo=True,
            input_names=["speech", "lengths"],
            output_names=["log_probs", "out_lengths"],
            dynamic_shapes={"speech": {0: batch, 1: frames}, "lengths": {0: batch}},
            verbose=False,
        )
    quiet.setLevel(level)
    return path


class OnnxCTC:
    """An exported CTC graph on onnxruntime, called as the model is: (speech, lengths) ->
    an object with log_probs and lengths (torch tensors)."""

    def __init__(self, path: Path):
        try:
            import onnxruntime
        except ImportError:
            raise PeerseqError("--onnx needs onnxruntime: pip install 'peerseq[onnx]'") from None
        if not path.is_file():
            raise PeerseqError(f"{path}: no ONNX model (export it with --format onnx)")
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, speech: torch.Tensor, lengths: torch.Tensor):
        log_probs, out_lengths = self.session.run(
            None, {"speech": speech.cpu().numpy(), "lengths": lengths.cpu().long().numpy()}
        )
        return _Out(torch.from_numpy(log_probs), torch.from_numpy(out_lengths))


class _Out:
    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor):
        self.log_probs, self.lengths = log_probs, lengths
