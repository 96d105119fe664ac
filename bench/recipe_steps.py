"""Milliseconds per training step of the recipes' models at `small`, each beside the best
plain-PyTorch equivalent where torch.nn has one (part of bench/train_step.py's report).

peerseq's step is the engine's own update (forward, loss, backward, AdamW) on the recipe's
config and batch shapes (bench/step_overhead.py builds them from small copies of the corpora).
The references are built here from torch.nn, the way a user would write them, with the same
sizes, dropout and loss, stepped by torch's AdamW:

    mt          nn.Transformer (norm_first, batch_first, key padding masks, tied output layer),
                label-smoothed cross-entropy (recipes/em_network mt.yaml: d 128, 3 + 3 layers)
    student_a/b DS2's two convolutions (nn.Conv2d, BatchNorm2d, Hardtanh, masked as
    teacher_a   deepspeech.pytorch masks them) and nn.LSTM over packed sequences (one stacked
                bidirectional nn.LSTM for the students; for Teacher A, as deepspeech.pytorch,
                one per layer with the two directions summed), Linear, F.ctc_loss (recipes/mlkd)

The Conformer-CTC, the EM-Networks and the CRNN have no torch.nn equivalent: their time alone is
given (the EM-Network's cost over its plain model is bench/step_overhead.py's ratio).
"""

from __future__ import annotations

import math
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from step_overhead import EM_TASKS, MLKD_TASKS, build_method, mlkd_method, recipe_method
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from peerseq.tokens import BOS, PAD

MLKD = dict(MLKD_TASKS) | {
    "teacher_a": ("teacher_a.yaml", ("teacher_a",)),
    "teacher_b": ("teacher_b.yaml", ("teacher_b",)),
}


# nn.Transformer asks for nested tensors, which pre-norm layers cannot use, and says so
warnings.filterwarnings("ignore", message="enable_nested_tensor is True")


class ReferenceMT(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, d, heads, ffn, enc, dec, dropout):
        super().__init__()
        self.d = d
        self.src = nn.Embedding(src_vocab, d, padding_idx=PAD)
        self.tgt = nn.Embedding(tgt_vocab, d, padding_idx=PAD)
        self.model = nn.Transformer(
            d, heads, enc, dec, ffn, dropout, batch_first=True, norm_first=True
        )
        self.out = nn.Linear(d, tgt_vocab, bias=False)
        self.out.weight = self.tgt.weight
        self.drop = nn.Dropout(dropout)

    def positions(self, t: int) -> torch.Tensor:
        pos = torch.arange(t, dtype=torch.float32)[:, None]
        inv = torch.exp(torch.arange(0, self.d, 2) * (-math.log(10000.0) / self.d))
        return torch.stack([(pos * inv).sin(), (pos * inv).cos()], -1).flatten(1)

    def forward(self, src, prev):
        x = self.drop(self.src(src) * math.sqrt(self.d) + self.positions(src.size(1)))
        y = self.drop(self.tgt(prev) * math.sqrt(self.d) + self.positions(prev.size(1)))
        causal = nn.Transformer.generate_square_subsequent_mask(prev.size(1), dtype=torch.bool)
        h = self.model(
            x,
            y,
            tgt_mask=causal,
            src_key_padding_mask=src == PAD,
            tgt_key_padding_mask=prev == PAD,
            memory_key_padding_mask=src == PAD,
            tgt_is_causal=True,
        )
        return self.out(h)


def mt_step(model, opt, batch) -> None:
    src, tgt = batch.tokens["source"], batch.tokens["target"]
    prev = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1).masked_fill(
        tgt == PAD, PAD
    )
    logits = model(src, prev)
    loss = F.cross_entropy(
        logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD, label_smoothing=0.1
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class ReferenceDS2CTC(nn.Module):
    def __init__(self, feats, vocab, channels, hidden, layers, summed):
        super().__init__()
        specs = [((11, 41), (2, 2), (5, 20)), ((11, 21), (1, 2), (5, 10))]
        convs, c, f = [], 1, feats
        for k, s, p in specs:
            convs += [nn.Conv2d(c, channels, k, s, p), nn.BatchNorm2d(channels), nn.Hardtanh(0, 20)]
            c, f = channels, (f + 2 * p[1] - k[1]) // s[1] + 1
        self.conv = nn.Sequential(*convs)
        self.summed, self.hidden = summed, hidden
        if summed:  # deepspeech.pytorch: one BatchRNN per layer, directions summed
            self.rnns = nn.ModuleList(
                nn.LSTM(c * f if i == 0 else hidden, hidden, bidirectional=True, batch_first=True)
                for i in range(layers)
            )
        else:
            self.rnns = nn.ModuleList(
                [nn.LSTM(c * f, hidden, layers, bidirectional=True, batch_first=True)]
            )
        self.out = nn.Linear(hidden if summed else 2 * hidden, vocab)

    def forward(self, speech, lengths):
        x = self.conv(speech.unsqueeze(1))  # [B, C, T', F']
        lengths = (lengths - 1) // 2 + 1
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)
        for rnn in self.rnns:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=t)
            if self.summed:
                x = x[..., : self.hidden] + x[..., self.hidden :]
        return self.out(x).log_softmax(-1), lengths


def ctc_step(model, opt, batch) -> None:
    log_probs, lengths = model(batch.speech, batch.speech_lengths)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),
        batch.tokens["transcript"],
        lengths,
        batch.lengths["transcript"],
        zero_infinity=True,
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def reference_for(name: str, peers, batch):
    """(step, model) of the plain equivalent of a task's single model, or None (EM-Networks)."""
    if len(peers) != 1:
        return None
    model = next(iter(peers.values())).model
    if name == "aed":
        layer = model.encoder.layers[0]
        ref = ReferenceMT(
            model.frontend.embedding.num_embeddings,
            model.output_layer.out_features,
            model.output_layer.in_features,
            layer.attn.heads,
            layer.ffn[0].out_features,
            len(model.encoder.layers),
            len(model.decoder.layers),
            layer.dropout.p,
        )
        return mt_step, ref
    if name in ("student_a", "student_b", "teacher_a"):  # ds2 front-ends
        rnn = model.encoder
        convs = [m for m in model.frontend.modules() if isinstance(m, nn.Conv2d)]
        summed = name == "teacher_a"
        hidden = rnn.hidden if summed else rnn.lstm.hidden_size
        layers = len(rnn.layers) if summed else rnn.lstm.num_layers
        vocab = model.output_layer.out_features
        ref = ReferenceDS2CTC(
            batch.speech.size(-1), vocab, convs[0].out_channels, hidden, layers, summed
        )
        return ctc_step, ref
    return None


def tasks(batches: int) -> dict:
    """name -> (rule, peers, links, opt, batches) for every recipe model."""
    out = {}
    for name in ("ctc", "em_ctc", "aed", "em_aed"):
        peers, links, rule, opt, bs = recipe_method(name, batches)
        out[name] = (rule, peers, links, opt, bs)
    for name in ("student_a", "student_b", "teacher_a", "teacher_b"):
        peers, links, rule, opt, bs = mlkd_method(name, batches, MLKD)
        out[name] = (rule, peers, links, opt, bs)
    return out


LABELS = {
    "ctc": "Conformer-CTC (paper 002 ASR, d 144 x 6)",
    "em_ctc": "EM-Network on it",
    "aed": "MT Transformer (paper 002 MT, d 128, 3 + 3)",
    "em_aed": "EM-AED on it",
    "student_a": "Student A (wide BLSTM, paper 003)",
    "student_b": "Student B (deep BLSTM)",
    "teacher_a": "Teacher A (DeepSpeech2)",
    "teacher_b": "Teacher B (CRNN)",
}


def recipe_table(rounds: int = 5, batches: int = 1) -> dict:
    """{task: {"peerseq_ms", "reference_ms" (or None), "speedup", "batch"}}, interleaved rounds,
    medians after one warm-up round."""
    built = tasks(batches)
    refs = {}
    for name, (_, peers, _, _, bs) in built.items():
        got = reference_for(name, {k: p for k, p in peers.items() if p.trainable}, bs[0])
        if got is not None:
            step, model = got
            refs[name] = (step, model.train(), torch.optim.AdamW(model.parameters(), lr=1e-4), bs)
    times = {n: [] for n in built} | {f"{n}:ref": [] for n in refs}
    step_no = 0
    for r in range(rounds + 1):
        for name, (rule, peers, links, opt, bs) in built.items():
            t0 = time.perf_counter()
            for b in bs:
                step_no += 1
                rule(peers, links, b, step_no, opt, True)
            if r:
                times[name].append((time.perf_counter() - t0) / len(bs))
            if name in refs:
                step, model, ref_opt, _ = refs[name]
                t0 = time.perf_counter()
                for b in bs:
                    step(model, ref_opt, b)
                if r:
                    times[f"{name}:ref"].append((time.perf_counter() - t0) / len(bs))
    out = {}
    for name, (_, _, _, _, bs) in built.items():
        ours = 1000 * statistics.median(times[name])
        ref = 1000 * statistics.median(times[f"{name}:ref"]) if name in refs else None
        b = bs[0]
        shape = b.speech.shape if b.speech is not None else b.tokens["target"].shape
        out[name] = {
            "model": LABELS[name],
            "peerseq_ms": round(ours, 1),
            "reference_ms": round(ref, 1) if ref else None,
            "speedup": round(ref / ours, 3) if ref else None,
            "batch": list(shape),
        }
    return out


__all__ = ["recipe_table", "build_method", "EM_TASKS"]
