"""Batched vs one-sentence-at-a-time beam search (beam 5) on 200 real Multi30k sentences.

    python bench/beam_search.py [--model pkg.module:factory] [--batch-size 100] [--train-steps 100]

Prints exactly one line: `speedup=<x> same_output=<true|false>`, where speedup is the one-by-one
time over the batched time, and same_output says whether both give the same tokens and scores
(within 1e-4) for every sentence. Times are this process's CPU time on --threads threads
(default 1): on shared cores, wall time and intra-op thread spinning mostly measure the other
jobs, not the search.

Default model and data (`multi30k_small`): the first --n sentences of the bundled Multi30k test
set (test_2016_flickr), English -> German, tokenized with one joint sentencepiece unigram model
(vocabulary 2,000) trained here on the first 5,000 English and German training lines; the model
is peerseq's `mt_transformer` preset at size `small` (d 256, 4 + 3 layers), briefly trained
(--train-steps Adam steps, default 100, of 32 sentence pairs from those 5,000 lines) so that it
emits EOS at realistic lengths. It is not a usable translator: the point is realistic output
lengths and score distributions for the search, not translation quality. --train-steps 0 gives
a random-init model, whose outputs mostly run to the maximum length (a worst case).

--model names another factory `factory(n, seed) -> (model, sources)`: an IncrementalDecoding
model in eval mode and n source tensors [S] (token ids) or [S, F] (features); e.g.
`__main__:toy_transformer`, the random-init toy Transformer below on random tokens.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time

import torch
from torch import nn

from peerseq.data.corpora import multi30k
from peerseq.data.tokenizers import train_sentencepiece
from peerseq.losses import label_smoothed_nll
from peerseq.models.incremental import Memory
from peerseq.models.presets import build
from peerseq.paths import bundled_data_dir
from peerseq.search.beam_search import beam_search
from peerseq.tokens import BOS, EOS, PAD


class ToyTransformer(nn.Module):
    """Pre-norm Transformer encoder-decoder with a key/value cache (IncrementalDecoding).

    cache: per decoder layer a dict with self-attention keys/values [N, H, t, Dh] (grown each
    step) and cross-attention keys/values [N, H, S, Dh] (computed once from the memory).
    """

    def __init__(self, vocab=1000, d=128, heads=4, ffn=512, enc_layers=2, dec_layers=2):
        super().__init__()
        self.heads = heads
        self.src_emb = nn.Embedding(vocab, d)
        self.tgt_emb = nn.Embedding(vocab, d)
        self.register_buffer("pos", self._sinusoids(512, d), persistent=False)
        layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, batch_first=True,
                                           norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, enc_layers, enable_nested_tensor=False)
        self.enc_norm = nn.LayerNorm(d)
        self.dec = nn.ModuleList(
            nn.ModuleDict(
                {
                    "ln1": nn.LayerNorm(d),
                    "qkv": nn.Linear(d, 3 * d),
                    "o1": nn.Linear(d, d),
                    "ln2": nn.LayerNorm(d),
                    "q": nn.Linear(d, d),
                    "kv": nn.Linear(d, 2 * d),
                    "o2": nn.Linear(d, d),
                    "ln3": nn.LayerNorm(d),
                    "ff": nn.Sequential(nn.Linear(d, ffn), nn.ReLU(), nn.Linear(ffn, d)),
                }
            )
            for _ in range(dec_layers)
        )
        self.dec_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, vocab)

    @staticmethod
    def _sinusoids(n, d):
        pos = torch.arange(n)[:, None]
        freq = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe = torch.zeros(n, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return pe

    def _heads(self, x):  # [N, t, D] -> [N, H, t, Dh]
        n, t, d = x.shape
        return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)

    @staticmethod
    def _attend(q, k, v, bias=None):
        """q [N, H, 1, Dh], k/v [N, H, L, Dh] -> [N, H, 1, Dh].

        Plain matmuls: for a single query, CPU scaled_dot_product_attention is ~3x slower.
        """
        att = q @ k.transpose(-1, -2) * q.size(-1) ** -0.5  # [N, H, 1, L]
        if bias is not None:
            att = att + bias
        return att.softmax(-1) @ v

    def encode(self, src, src_lengths):
        mask = torch.arange(src.size(1), device=src.device)[None, :] < src_lengths[:, None]
        x = self.src_emb(src) * math.sqrt(self.src_emb.embedding_dim) + self.pos[: src.size(1)]
        x = self.enc_norm(self.encoder(x, src_key_padding_mask=~mask))
        return Memory(x, mask)

    def decode_step(self, tokens, memory, cache):
        t = tokens.size(1) - 1
        x = self.tgt_emb(tokens[:, -1:]) * math.sqrt(self.tgt_emb.embedding_dim)
        x = x + self.pos[t]  # [N, 1, D]
        cache = cache or [{} for _ in self.dec]
        # additive mask [N, 1, 1, S]: -inf on padded source positions
        bias = torch.zeros(memory.mask.shape, device=x.device).masked_fill(~memory.mask, -math.inf)
        bias = bias[:, None, None, :]
        for layer, c in zip(self.dec, cache, strict=True):
            q, k, v = self._heads(layer["qkv"](layer["ln1"](x))).chunk(3, dim=-1)
            c["k"] = k if "k" not in c else torch.cat([c["k"], k], dim=2)
            c["v"] = v if "v" not in c else torch.cat([c["v"], v], dim=2)
            a = self._attend(q, c["k"], c["v"])  # all earlier steps are visible
            x = x + layer["o1"](a.transpose(1, 2).flatten(2))
            if "mk" not in c:  # cross keys/values depend on the memory only
                c["mk"], c["mv"] = self._heads(layer["kv"](memory.x)).chunk(2, dim=-1)
            q = self._heads(layer["q"](layer["ln2"](x)))
            a = self._attend(q, c["mk"], c["mv"], bias)
            x = x + layer["o2"](a.transpose(1, 2).flatten(2))
            x = x + layer["ff"](layer["ln3"](x))
        return self.out(self.dec_norm(x[:, 0])).log_softmax(-1), cache

    def reorder_cache(self, cache, index):
        # Cross keys/values are the same for all beams of a sentence, so a reorder within the
        # batch leaves them valid; only a shrinking batch needs them selected (as fairseq does).
        shrink = index.numel() != cache[0]["k"].size(0)
        return [
            {
                name: t.index_select(0, index) if shrink or name in ("k", "v") else t
                for name, t in c.items()
            }
            for c in cache
        ]


def toy_transformer(n: int, seed: int) -> tuple[nn.Module, list[torch.Tensor]]:
    """Random-init ToyTransformer and n random sentences of 5-30 tokens."""
    torch.manual_seed(seed)
    model = ToyTransformer().eval()
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 31, (n,), generator=g)
    return model, [torch.randint(4, 1000, (int(s),), generator=g) for s in lengths]


def log(msg: str) -> None:
    """Progress goes to stderr: stdout holds the one result line."""
    print(msg, file=sys.stderr, flush=True)


def multi30k_small(
    n: int, seed: int, train_steps: int = 100, log=lambda msg: None
) -> tuple[nn.Module, list[torch.Tensor]]:
    """mt_transformer/small on Multi30k en->de, trained train_steps steps (see the docstring);
    returns it in eval mode and the first n test sentences as token ids (no EOS)."""
    splits = multi30k.load(bundled_data_dir() / "multi30k")
    train = splits["train"][:5000]
    spm = train_sentencepiece([r["en"] for r in train] + [r["de"] for r in train], 2000, seed)
    torch.manual_seed(seed)
    model = build("mt_transformer", "small", vocab=spm.vocab_size)
    if train_steps > 0:
        src_ids = [torch.tensor(spm.encode(r["en"])) for r in train]
        tgt_ids = [torch.tensor(spm.encode(r["de"]) + [EOS]) for r in train]
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30))
        g = torch.Generator().manual_seed(seed)
        model.train()
        t0 = time.time()
        for step in range(train_steps):
            idx = torch.randint(len(train), (32,), generator=g).tolist()
            src, src_lengths = pad([src_ids[i] for i in idx])
            tgt, tgt_lengths = pad([tgt_ids[i] for i in idx])
            prev = torch.cat([torch.full((len(idx), 1), BOS), tgt[:, :-1]], dim=1)
            out = model(src, src_lengths, prev, tgt_lengths)
            loss, nll = label_smoothed_nll(out.log_probs, tgt, out.mask, epsilon=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if (step + 1) % 25 == 0:
                log(f"step {step + 1}: nll {float(nll.detach()):.2f} ({time.time() - t0:.0f} s)")
    model.eval()
    return model, [torch.tensor(spm.encode(r["en"])) for r in splits["test"][:n]]


def pad(sources: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """n tensors [S_i(, F)] -> (padded [n, S_max(, F)], lengths [n])."""
    lengths = torch.tensor([len(s) for s in sources])
    return nn.utils.rnn.pad_sequence(sources, batch_first=True, padding_value=PAD), lengths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="pkg.module:factory (default: multi30k_small)")
    ap.add_argument("--train-steps", type=int, default=100, help="multi30k_small's training")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    def factory(n: int, seed: int) -> tuple[nn.Module, list[torch.Tensor]]:
        what = f"trained {args.train_steps} steps" if args.train_steps else "random init"
        log(f"model: mt_transformer/small on Multi30k en->de, {what}")
        return multi30k_small(n, seed, args.train_steps, log)

    if args.model:
        mod, name = args.model.split(":")
        factory = getattr(importlib.import_module(mod), name)
    model, sources = factory(args.n, args.seed)
    log(f"searching {len(sources)} sentences, beam {args.beam}")
    beam_search(model, *pad(sources[:2]), beam=args.beam)  # warm-up (allocator, kernels)

    # batches hold sentences of similar length (as fairseq's batching does): less padding, and
    # their searches end at about the same step; chunks alternate between the two ways so that
    # load drifting on shared cores hits both
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    t_alone = t_batched = 0.0
    alone, batched = [], []
    for i in range(0, len(order), args.batch_size):
        chunk = [sources[j] for j in order[i : i + args.batch_size]]
        start = time.process_time()
        for s in chunk:
            alone += beam_search(model, *pad([s]), beam=args.beam)
        t_alone += time.process_time() - start
        start = time.process_time()
        batched += beam_search(model, *pad(chunk), beam=args.beam)
        t_batched += time.process_time() - start

    same = all(
        [h.tokens for h in a] == [h.tokens for h in b]
        and all(abs(x.score - y.score) <= 1e-4 for x, y in zip(a, b, strict=True))
        for a, b in zip(alone, batched, strict=True)
    )
    print(f"speedup={t_alone / t_batched:.2f} same_output={str(same).lower()}")


if __name__ == "__main__":
    main()
