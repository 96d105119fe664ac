"""One training step of peerseq's ST Transformer against a plain-PyTorch reference, interleaved.

    python bench/train_step.py [--rounds 7] [--threads 2] [--no-recipes]

The step (issue 16): 2 x Conv1d (kernel 5, stride 2, GLU) front-end, 6 encoder + 3 decoder
pre-norm layers, d 256, 4 heads, ffn 1024, vocabulary 1000, dropout 0.1 (after positions, on
attention probabilities, after the FFN's activation, on every residual branch); batch 16 x 400
frames of 80-dim features, 25 target tokens; forward, label-smoothed cross-entropy (0.1),
backward and an AdamW step. peerseq's model is the `st_transformer` preset at size `small`; the
reference is built here from torch.nn (nn.TransformerEncoderLayer/DecoderLayer with
norm_first=True, F.cross_entropy with label_smoothing), with the same shapes and dropout in the
same places.

The rounds alternate the two models in one process so that a shared machine's load spreads
evenly; a model's time is the median of its rounds. FLOPs of one step are counted with
torch.utils.flop_counter (the same for both, up to the loss); the machine's fp32 matmul peak is
measured in the same run (the best of several 2048 x 2048 products). Prints one JSON line:
speedup_vs_reference (reference ms per GFLOP / peerseq ms per GFLOP; the median over rounds of
each round's ratio), both times (medians), both
FLOP counts and peerseq's share of the peak; and under "recipes" the ms per training step of
every recipe's model at `small`, beside its plain-PyTorch equivalent where one exists
(bench/recipe_steps.py: which, and how they are built).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from peerseq.engine.optim import OptimConfig, build_optimiser
from peerseq.losses import label_smoothed_nll
from peerseq.models.presets import build
from peerseq.tokens import BOS

B, T, FEATS, U, VOCAB = 16, 400, 80, 25, 1000
D, HEADS, FFN, ENC, DEC, DROPOUT, MID = 256, 4, 1024, 6, 3, 0.1, 512


class ReferenceST(nn.Module):
    """The same ST Transformer from torch.nn parts (what a user would write by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(FEATS, MID, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(MID // 2, 2 * D, 5, stride=2, padding=2)
        self.drop = nn.Dropout(DROPOUT)
        layer = dict(d_model=D, nhead=HEADS, dim_feedforward=FFN, dropout=DROPOUT)
        layer |= dict(batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer),
            ENC,
            norm=nn.LayerNorm(D),
            enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer), DEC, norm=nn.LayerNorm(D)
        )
        self.embed = nn.Embedding(VOCAB, D, padding_idx=0)
        self.out = nn.Linear(D, VOCAB, bias=False)
        self.out.weight = self.embed.weight

    @staticmethod
    def positions(t: int) -> torch.Tensor:
        pos = torch.arange(t, dtype=torch.float32)[:, None]
        inv = torch.exp(torch.arange(0, D, 2, dtype=torch.float32) * (-math.log(10000.0) / D))
        return torch.stack([(pos * inv).sin(), (pos * inv).cos()], -1).flatten(1)

    def forward(self, speech: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.conv1(speech.transpose(1, 2)), dim=1)
        x = F.glu(self.conv2(x), dim=1).transpose(1, 2)
        x = self.drop(x * math.sqrt(D) + self.positions(x.size(1)))
        memory = self.encoder(x)
        y = self.drop(self.embed(prev) * math.sqrt(D) + self.positions(prev.size(1)))
        causal = nn.Transformer.generate_square_subsequent_mask(prev.size(1), dtype=torch.bool)
        y = self.decoder(y, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.out(y)


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    tgt = torch.randint(4, VOCAB, (B, U), generator=g)
    prev = torch.cat([torch.full((B, 1), BOS), tgt[:, :-1]], dim=1)
    return {
        "speech": torch.randn(B, T, FEATS, generator=g),
        "speech_lengths": torch.full((B,), T),
        "prev": prev,
        "tgt": tgt,
        "tgt_lengths": torch.full((B,), U),
    }


def peerseq_step(model, opt, b) -> None:
    out = model(b["speech"], b["speech_lengths"], b["prev"], b["tgt_lengths"])
    loss, _ = label_smoothed_nll(out.log_probs, b["tgt"], out.mask, 0.1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def reference_step(model, opt, b) -> None:
    logits = model(b["speech"], b["prev"])
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), b["tgt"].reshape(-1), label_smoothing=0.1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def step_flops(step, model, opt, b) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        step(model, opt, b)
    return counter.get_total_flops()


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n x n product on the current threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds of each (after a warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-recipes", action="store_true", help="the ST step only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b = batch()
    ours = build("st_transformer", "small", src_feats=FEATS, vocab=VOCAB).train()
    ref = ReferenceST().train()
    opts = {
        # each as it trains: peerseq's optimiser is AdamW on torch's fused kernel
        "peerseq": build_optimiser(list(ours.parameters()), OptimConfig(lr=1e-4))[0],
        "reference": torch.optim.AdamW(ref.parameters(), lr=1e-4),
    }
    runs = {"peerseq": (peerseq_step, ours), "reference": (reference_step, ref)}
    flops = {k: step_flops(f, m, opts[k], b) for k, (f, m) in runs.items()}  # also a warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, (f, m) in runs.items():
            t0 = time.perf_counter()
            f(m, opts[k], b)
            times[k].append(time.perf_counter() - t0)
    peak = matmul_peak()
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    # each round's two steps ran back to back: the median of the rounds' ratios is steadier on
    # a shared machine than the ratio of the two medians
    ratios = [
        (r / flops["reference"]) / (o / flops["peerseq"])
        for o, r in zip(times["peerseq"], times["reference"], strict=True)
    ]
    recipes = {}
    if not args.no_recipes:
        from recipe_steps import recipe_table  # the bench folder is on sys.path

        recipes = {"recipes": recipe_table(rounds=max(3, args.rounds // 2))}
    print(
        json.dumps(
            {
                "speedup_vs_reference": round(statistics.median(ratios), 3),
                "peerseq_ms": round(ms["peerseq"], 1),
                "reference_ms": round(ms["reference"], 1),
                "peerseq_gflop": round(flops["peerseq"] / 1e9, 2),
                "reference_gflop": round(flops["reference"] / 1e9, 2),
                "peerseq_pct_of_peak": round(
                    100 * flops["peerseq"] / (ms["peerseq"] / 1000) / (peak * 1e9), 1
                ),
                "matmul_peak_gflops": round(peak, 1),
                "threads": args.threads,
                "rounds": args.rounds,
            }
            | recipes
        )
    )


if __name__ == "__main__":
    main()
