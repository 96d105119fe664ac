"""ONNX for the inference path of CTC models (`peerseq export ... --format onnx`).

The graph: features [B, T, F] float32 and their lengths [B] int64 -> CTC log-probabilities
[B, T', V] and output lengths [B], with batch and time dynamic; everything before it (reading
audio, features, CMVN) and after it (greedy CTC, the tokenizer) is what `peerseq.inference`
does for the PyTorch model, so the two give the same transcripts. Exported with torch's dynamo
exporter (torch.onnx.export(dynamo=True), which needs onnxscript); run with onnxruntime. The
optional extra `pip install 'peerseq[onnx]'` brings the three.

Encoder-decoders are two graphs: encoder.onnx, (src [B, T, F] features or [B, S] token ids,
lengths [B]) -> (memory [B, S', D], memory_mask [B, S'] bool), and decoder_step.onnx, (tokens
[N, t] with BOS first, memory, memory_mask) -> the next token's log-probabilities [N, V]; the
step recomputes its prefix (no cache in the graph), which a beam search around it calls once
per output position. `transcribe --onnx` runs CTC graphs; a search over the decoder graph is
the caller's for now.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from peerseq.errors import PeerseqError

ONNX_NAME = "model.onnx"
ENCODER_NAME, STEP_NAME = "encoder.onnx", "decoder_step.onnx"


class _CTCGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor):
        out = self.model(speech, lengths)
        return out.log_probs, out.lengths


class _EncoderGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        memory = self.model.encode(src, lengths)
        return memory.x, memory.mask


class _StepGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor):
        from peerseq.models.incremental import Memory

        log_probs, _ = self.model.decode_step(tokens, Memory(memory, memory_mask), None)
        return log_probs


def _export(graph: nn.Module, args: tuple, path: Path, names: tuple, outputs: list, dims: dict):
    try:
        import onnxscript  # noqa: F401  (the exporter needs it; say so here, not deep inside)
    except ImportError:
        raise PeerseqError(
            "--format onnx needs onnx, onnxruntime and onnxscript: pip install 'peerseq[onnx]'"
        ) from None
    quiet = logging.getLogger("torch.onnx")  # its notes (e.g. "torchvision is not installed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's own deprecation notes
            torch.onnx.export(
                graph.eval().cpu(),
                args,
                str(path),
                dynamo=True,
                input_names=list(names),
                output_names=outputs,
                dynamic_shapes=dims,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    return path


def export_ctc(model: nn.Module, feats: int, path: Path) -> Path:
    """Write the CTC model's inference graph to path (eval mode, on the CPU)."""
    speech, lengths = torch.randn(2, 200, feats), torch.tensor([200, 150])
    batch, frames = torch.export.Dim("batch"), torch.export.Dim("frames", min=16, max=1_000_000)
    dims = {"speech": {0: batch, 1: frames}, "lengths": {0: batch}}
    names = ("speech", "lengths")
    return _export(
        _CTCGraph(model), (speech, lengths), path, names, ["log_probs", "out_lengths"], dims
    )


def export_seq2seq(model: nn.Module, src: torch.Tensor, folder: Path) -> list[str]:
    """Write encoder.onnx and decoder_step.onnx into folder; src: an example input batch of
    two ([2, T, F] features or [2, S] token ids, S >= 8)."""
    lengths = torch.tensor([src.size(1), src.size(1) - 3])
    batch = torch.export.Dim("batch")
    time = torch.export.Dim("src", min=8, max=1_000_000)
    dims = {"src": {0: batch, 1: time}, "lengths": {0: batch}}
    _export(
        _EncoderGraph(model), (src, lengths), folder / ENCODER_NAME, ("src", "lengths"),
        ["memory", "memory_mask"], dims,
    )  # fmt: skip
    with torch.no_grad():
        memory = model.encode(src, lengths)
    tokens = torch.ones(2, 3, dtype=torch.long)  # BOS, then any tokens
    rows, prefix = torch.export.Dim("rows"), torch.export.Dim("prefix", min=1, max=4096)
    mem_time = torch.export.Dim("memory", min=2, max=1_000_000)
    dims = {
        "tokens": {0: rows, 1: prefix},
        "memory": {0: rows, 1: mem_time},
        "memory_mask": {0: rows, 1: mem_time},
    }
    _export(
        _StepGraph(model), (tokens, memory.x, memory.mask), folder / STEP_NAME,
        ("tokens", "memory", "memory_mask"), ["log_probs"], dims,
    )  # fmt: skip
    return [ENCODER_NAME, STEP_NAME]


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
