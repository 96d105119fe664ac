"""Multi-process training (torchrun, gloo on the CPU) with alternating updates: every rank ends
with the same weights, and they are those of one process that sees the same global batches.

Which one process is equivalent: lhotse's DynamicBucketingSampler with world_size=2 draws each
bucket twice in a row (sync_buckets) and deals consecutive batches to the ranks, so a plain
world_size=1 sampler draws a different batch sequence. The equivalent single process iterates the
rank-0 and rank-1 samplers interleaved (rank 0's k-th batch, then rank 1's) with accum_steps=2:
DDP averages the two ranks' gradients, accumulation sums grad / accum_steps -- the same.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import torch

from peerseq.config import load_config
from peerseq.experiment import Experiment
from peerseq.rundir.checkpoint import latest_checkpoint
from peerseq.rundir.weights import load_weights
from peerseq.train import Trainer
from tests.crashing import fork_cli
from tests.torchrun import train_two_ranks

MAX_STEPS = 6

CONFIG = """\
out_dir: {out}
data:
  corpus: {corpus}
  prepare: {{name: multi30k, limit: 64, vocab_size: 200}}
  fields:
    source: {{column: en, tokenizer: spm_en}}
    target: {{column: de, tokenizer: spm_de, eos: true}}
  max_tokens: 200
  limit_dev: 16
peers:
  a:
    model: {{preset: mt_transformer, size: tiny, overrides: {{dropout: 0.0}}}}
    reads: source
    predicts: target
    decode: {{metric: none}}
  b:
    model: {{preset: mt_transformer, size: tiny, overrides: {{dropout: 0.0}}}}
    reads: source
    predicts: target
    decode: {{metric: none}}
links:
  - {{a: a, b: b, kind: kl_symmetric}}
optim: {{name: adamw, lr: 0.001, warmup: 2}}
train:
  update: alternating
  max_epochs: 1
  max_steps: {steps}
  log_every: 1
  keep_last: 1
  device: cpu
  num_threads: 1
  seed: 1
"""


class Interleaved:
    """The batches of ranks 0..N-1 of a DDP run, in one stream: rank 0's k-th, rank 1's k-th..."""

    def __init__(self, samplers):
        self.samplers = samplers

    def set_epoch(self, epoch: int) -> None:
        for s in self.samplers:
            s.set_epoch(epoch)

    def __iter__(self):
        for group in zip(*self.samplers, strict=True):
            yield from group


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    ckpt = latest_checkpoint(run)
    assert ckpt is not None, f"no checkpoint in {run}"
    return {p: load_weights(ckpt / f"model.{p}.safetensors") for p in ("a", "b")}


def test_ddp_two_ranks_match_one_process_with_accumulation(tmp_path, m30k_64):
    # the corpus is prepared beforehand (tests/conftest.py): two ranks must not both prepare it
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(CONFIG.format(out=tmp_path / "unused", corpus=m30k_64, steps=MAX_STEPS))

    # --- two processes under torchrun ---------------------------------------------------------
    run2 = tmp_path / "ddp2"
    train_two_ranks([str(cfg), f"out_dir={run2}"], tmp_path, timeout=180)
    ranks = json.loads((run2 / "ddp_ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(ranks["checksums"]) == 2
    assert set(ranks["checksums"][0]) == {"a", "b"}
    assert ranks["checksums"][0] == ranks["checksums"][1]

    # --- one process, the same global batches, accum_steps=2 ----------------------------------
    run1 = tmp_path / "one"
    exp = load_config(Experiment, cfg, [f"out_dir={run1}", "train.accum_steps=2"])
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(exp)
        training_sampler, data = trainer.data.sampler, trainer.data

        def sampler(split, training):
            if not training:
                return training_sampler(split, training)
            shards = []
            for rank in range(2):
                data.world_size, data.rank = 2, rank
                shards.append(training_sampler(split, training))
            data.world_size, data.rank = 1, 0
            return Interleaved(shards)

        trainer.data.sampler = sampler
        state = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    assert state.step == MAX_STEPS

    two, one = _weights(run2), _weights(run1)
    for peer in ("a", "b"):
        assert two[peer].keys() == one[peer].keys()
        for name, w in two[peer].items():
            where = f"{peer}.{name}"
            torch.testing.assert_close(
                one[peer][name], w, atol=1e-5, rtol=1e-4, msg=lambda m, w=where: f"{w}: {m}"
            )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_stopped_rank_times_out_with_a_clear_error(tmp_path, m30k_64):
    """Rank 1 is stopped (SIGSTOP, not killed) mid-run: rank 0 gives up after
    train.collective_timeout and exits 2 with one line naming the setting, rather than waiting
    gloo's 30 minutes. The two ranks are children forked from this process, set up as torchrun
    would (the environment variables of env://)."""
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(CONFIG.format(out=tmp_path / "run", corpus=m30k_64, steps=10_000))
    port = _free_port()
    ranks, logs = [], [tmp_path / f"rank{r}.log" for r in (0, 1)]
    argv = ["train", str(cfg), "train.collective_timeout=4", "train.max_epochs=1000"]
    for rank in (0, 1):
        env = {
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        ranks.append(fork_cli(0, 0, argv, logs[rank], wait=False, env=env))
    try:
        deadline = time.time() + 120
        metrics = tmp_path / "run" / "metrics.jsonl"
        # a training record, not only the start record: rank 1 stops mid-run
        while time.time() < deadline and not (
            metrics.is_file() and '"split": "train"' in metrics.read_text()
        ):
            assert all(r.running() for r in ranks), logs[0].read_text()[-2000:]
            time.sleep(0.05)
        os.kill(ranks[1].pid, signal.SIGSTOP)
        stopped = time.time()
        while ranks[0].running() and time.time() < stopped + 60:
            time.sleep(0.05)
        waited = time.time() - stopped
    finally:
        for r in ranks:
            r.kill()
    code = ranks[0].code
    err = logs[0].read_text().strip().splitlines()
    assert code == 2, "\n".join(err[-40:])
    assert "Traceback" not in "\n".join(err)
    assert "train.collective_timeout=4 s" in err[-1] and err[-1].startswith("peerseq: error:")
    assert waited < 30
