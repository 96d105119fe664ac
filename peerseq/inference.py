"""Using a trained model: `peerseq.load(MODEL)` and `peerseq transcribe` / `peerseq translate`.

MODEL is an export (`peerseq export`, self-contained) or a run directory (then `peer` names
the peer when the run has several). Audio is read by lhotse (any format soundfile reads),
downmixed to one channel, resampled to the corpora's 16 kHz, and turned into the features the
model was trained on (kind and per-utterance CMVN from its config), in batches; folders are
searched recursively. Text goes through the model's own tokenizer.

    model = peerseq.load("exp/fsdd-export")
    for r in model.transcribe(["one.wav", "more/"]):
        print(r.source, r.text, r.timings)   # timings: CTC models, (token, seconds) pairs

Encoder-decoders decode with batched beam search as configured (`beam` overrides the width);
CTC models greedily, as papers 002 and 003 decode them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from lhotse import CutSet, Recording

from peerseq.data.audio import AUDIO_SUFFIXES
from peerseq.data.audio import audio_files as files_in
from peerseq.data.batching import Batch, SpeechCollator, pad_tokens
from peerseq.data.features import FRAME_SHIFT
from peerseq.data.manifest import SAMPLING_RATE
from peerseq.decoding.peer import batch_hypotheses
from peerseq.engine.peer import is_seq2seq, unwrap
from peerseq.errors import DataError, PeerseqError
from peerseq.runs import Run, load_run
from peerseq.search.ctc import ctc_greedy_frames


@dataclass
class Result:
    """One input's output: source (the file, or the input text), text, and for a CTC model
    each token with the time (seconds from the start of the audio) where it begins."""

    source: str
    text: str
    timings: list[tuple[str, float]] | None = field(default=None)

    def as_dict(self) -> dict:
        d = {"source": self.source, "text": self.text}
        if self.timings is not None:
            d["timings"] = [{"token": t, "start": round(s, 3)} for t, s in self.timings]
        return d


def audio_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files given, and every audio file under the folders given (sorted); a missing path
    is an error naming it."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = files_in(p)
            if not found:
                raise DataError(f"{p}: no audio files in it ({', '.join(sorted(AUDIO_SUFFIXES))})")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out


def _cut(path: Path, index: int):
    try:
        rec = Recording.from_file(path, recording_id=f"input-{index:06d}")
    except Exception as e:  # soundfile / lhotse raise many types; all mean "not audio we read"
        raise DataError(
            f"{path}: not an audio file we can read ({type(e).__name__}: {e})"
        ) from None
    cut = rec.to_cut()
    if rec.num_channels > 1:
        cut = cut.to_mono(mono_downmix=True)
    return cut.resample(SAMPLING_RATE) if rec.sampling_rate != SAMPLING_RATE else cut


class Model:
    """One trained peer and what it needs to run on audio files or text."""

    def __init__(self, run: Run, peer: str, onnx: bool = False):
        self.run, self.name, self.peer = run, peer, run.peers[peer]
        self.forward = unwrap(self.peer.model)  # or the exported graph on onnxruntime:
        if onnx:
            from peerseq.onnx_export import ONNX_NAME, OnnxCTC

            if not self.reads_speech or not self.is_ctc:
                raise PeerseqError(f"peer '{peer}': ONNX runs CTC speech models only, for now")

            self.forward = OnnxCTC(Path(run.dir) / ONNX_NAME)
        self.cfg = run.exp.peers[peer].decode
        self.tokenizer = run.data.tokenizers[self.peer.predicts]
        data = run.exp.data
        self.features = SpeechCollator({}, data.features, data.cmvn)

    @property
    def reads_speech(self) -> bool:
        return self.peer.reads == "speech"

    @property
    def is_ctc(self) -> bool:
        return not is_seq2seq(unwrap(self.peer.model))

    def transcribe(
        self,
        audio: Iterable[str | Path] | str | Path,
        batch_size: int = 16,
        beam: int | None = None,
    ) -> list[Result]:
        """Every audio file given (or under the folders given), in the order found."""
        if not self.reads_speech:
            raise PeerseqError(
                f"peer '{self.name}' reads text ({self.peer.reads}): use translate(texts)"
            )
        files = audio_files([audio] if isinstance(audio, str | Path) else audio)
        return list(self._run_audio(files, batch_size, beam))

    def translate(
        self,
        inputs: Iterable[str | Path] | str | Path,
        batch_size: int = 16,
        beam: int | None = None,
    ) -> list[Result]:
        """Audio files (a speech translation model) or sentences (a text model)."""
        if self.reads_speech:
            return self.transcribe(inputs, batch_size, beam)
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        return list(self._run_text(texts, batch_size, beam))

    def _run_audio(self, files: list[Path], batch_size: int, beam: int | None) -> Iterator[Result]:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            cuts = CutSet.from_cuts(_cut(p, start + i) for i, p in enumerate(chunk))
            feats, lens = self.features.features(cuts)
            batch = Batch(ids=[str(p) for p in chunk], speech=feats, speech_lengths=lens)
            yield from self._decode(batch, beam)

    def _run_text(self, texts: list[str], batch_size: int, beam: int | None) -> Iterator[Result]:
        reader = self.run.data.tokenizers[self.peer.reads]
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            tokens, lengths = pad_tokens([reader.encode(t) for t in chunk])
            batch = Batch(ids=chunk, tokens={self.peer.reads: tokens})
            batch.lengths[self.peer.reads] = lengths
            yield from self._decode(batch, beam)

    @torch.no_grad()
    def _decode(self, batch: Batch, beam: int | None) -> Iterator[Result]:
        batch = batch.to(self.run.device)
        cfg = self.cfg if beam is None else dataclasses.replace(self.cfg, beam=beam)
        if not self.is_ctc:
            for source, hyps in zip(
                batch.ids, batch_hypotheses(self.peer, batch, cfg), strict=True
            ):
                yield Result(source, self.tokenizer.decode(hyps[0] if hyps else []))
            return
        src, src_lengths = self.peer.inputs(batch)
        out = self.forward(src, src_lengths)
        paths = ctc_greedy_frames(out.log_probs, out.lengths)
        for i, (source, path) in enumerate(zip(batch.ids, paths, strict=True)):
            # seconds per output frame: input frames are 10 ms, the front-end subsamples them
            period = FRAME_SHIFT * int(src_lengths[i]) / max(int(out.lengths[i]), 1)
            timings = [(self.tokenizer.decode([tok]), frame * period) for tok, frame in path]
            yield Result(source, self.tokenizer.decode([tok for tok, _ in path]), timings)


def load(
    model: str | Path,
    peer: str | None = None,
    weights: str = "best",
    device: str = "auto",
    onnx: bool = False,
) -> Model:
    """A trained model ready to use: an export directory, or a run directory and one of its
    peers (`peer` may be left out when the run has one peer that decodes). onnx: a CTC export's
    model.onnx runs on onnxruntime instead of PyTorch (same features, same decoding)."""
    run = load_run(model, weights, device)
    usable = [
        n for n, p in run.peers.items() if not p.upstream and p.predicts in run.data.tokenizers
    ]
    if peer is None:
        if len(usable) != 1:
            raise PeerseqError(
                f"{model}: {len(usable)} peers could be used ({', '.join(usable)}): "
                "name one with --peer"
            )
        peer = usable[0]
    if peer not in usable:
        raise PeerseqError(f"{model}: no usable peer '{peer}' (peers: {', '.join(usable)})")
    return Model(run, peer, onnx)


__all__ = ["Model", "Result", "audio_files", "load"]
