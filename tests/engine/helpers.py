"""Tiny peers on random data for engine tests."""

from __future__ import annotations

import torch

from peerseq.data.batching import Batch
from peerseq.engine.peer import Peer
from peerseq.models.presets import build


def batch(b: int = 3, frames: int = 40, feats: int = 8, vocab: int = 12, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([frames - 4 * i for i in range(b)])
    speech = torch.randn(b, frames, feats, generator=g)
    tgt_len = torch.tensor([5 - i % 2 for i in range(b)])
    target = torch.randint(4, vocab, (b, 5), generator=g)
    target[torch.arange(b), tgt_len - 1] = 2  # EOS
    for i, n in enumerate(tgt_len.tolist()):
        target[i, n:] = 0
    src = torch.randint(4, vocab, (b, 6), generator=g)
    return Batch(
        ids=[f"u{i}" for i in range(b)],
        speech=speech,
        speech_lengths=lengths,
        tokens={"target": target, "source": src, "transcript": target[:, :3].clamp(min=4)},
        lengths={
            "target": tgt_len,
            "source": torch.tensor([6] * b),
            "transcript": torch.tensor([3] * b),
        },
    )


def st_mt_peers(vocab: int = 12, feats: int = 8, seed: int = 0) -> dict[str, Peer]:
    torch.manual_seed(seed)
    st = build("st_transformer", "tiny", src_feats=feats, vocab=vocab, dropout=0.0)
    mt = build("mt_transformer", "tiny", vocab=vocab, dropout=0.0)
    return {
        "st": Peer("st", st, reads="speech", predicts="target", loss="nll"),
        "mt": Peer("mt", mt, reads="source", predicts="target", loss="nll"),
    }


def ctc_peers(vocab: int = 12, feats: int = 8, seed: int = 0) -> dict[str, Peer]:
    torch.manual_seed(seed)
    make = lambda: build("asr_transformer_ctc", "tiny", src_feats=feats, vocab=vocab, dropout=0.0)
    return {
        "a": Peer("a", make(), reads="speech", predicts="transcript", loss="ctc"),
        "b": Peer("b", make(), reads="speech", predicts="transcript", loss="ctc"),
    }


def mt_experiment(
    tmp_path, peers: dict, links: list | None = None, src="en", tgt="de", corpus=None, **train
):
    """An Experiment on 32 Multi30k sentences: text peers reading `source` and writing
    `target`, the run in tmp_path/run. corpus: that corpus already prepared (tests/conftest.py
    m30k_32), else it is prepared under tmp_path on first use. train: TrainConfig fields
    (max_steps 2 and one thread by default)."""
    from peerseq.experiment import Experiment
    from peerseq.typed import from_dict

    return from_dict(
        Experiment,
        {
            "out_dir": str(tmp_path / "run"),
            "data": {
                "corpus": str(corpus or tmp_path / "m30k"),
                "prepare": {"name": "multi30k", "limit": 32, "vocab_size": 150},
                "fields": {
                    "source": {"column": src, "tokenizer": f"spm_{src}"},
                    "target": {"column": tgt, "tokenizer": f"spm_{tgt}", "eos": True},
                },
            },
            "peers": peers,
            "links": links or [],
            "train": {"max_steps": 2, "num_threads": 1, "log_every": 1} | train,
        },
    )
