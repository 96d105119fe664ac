"""lhotse Shar shards: `prepare --shar` writes them, training streams them, each torchrun rank
reading its own shards, with the same batches for a seed."""

import json
from pathlib import Path

import pytest

from peerseq.cli import main
from peerseq.data.batching import speech_sampler
from peerseq.data.config import DataConfig, FieldConfig
from peerseq.data.manifest import load_split
from peerseq.data.pipeline import Data
from peerseq.data.prepare import PrepareArgs, prepare
from peerseq.data.shar import SharSampler, rank_shards, shard_cuts, shards
from peerseq.errors import DataError
from peerseq.rundir.checkpoint import latest_checkpoint
from tests.torchrun import train_two_ranks

SMOKE = Path(__file__).resolve().parents[2] / "recipes" / "smoke" / "ctc_teacher.yaml"

CONFIG = """\
out_dir: {out}
data:
  corpus: {corpus}
  fields:
    transcript: {{column: transcript, tokenizer: chars}}
  max_frames: 2500
  shar: true
  features: {features}
peers:
  asr:
    model: {{preset: asr_transformer_ctc, size: tiny}}
    reads: speech
    predicts: transcript
    loss: ctc
    decode: {{metric: cer}}
optim: {{name: adamw, lr: 0.003, warmup: 2}}
train:
  max_epochs: 1
  log_every: 1
  keep_last: 1
  device: cpu
  num_threads: 1
  seed: 1
"""


@pytest.fixture(scope="module")
def shar_corpus(tmp_path_factory):
    """fsdd-connected, 48 training utterances in 4 shards of 12, FLAC audio."""
    out = tmp_path_factory.mktemp("shar") / "c"
    sizes = {"train": 48, "dev": 6, "test": 6}
    prepare(PrepareArgs("fsdd-connected", out, sizes=sizes, shar="audio", shard_size=12))
    return out


def test_prepare_writes_every_split_as_shards(shar_corpus):
    meta = json.loads((shar_corpus / "corpus.json").read_text())
    assert meta["shar"] == {"kind": "audio", "shards": {"train": 4, "dev": 1, "test": 1}}
    train = shards(shar_corpus, "train")
    assert len(train) == 4 and all(set(s) == {"cuts", "recording"} for s in train)
    streamed = {c.id: c for c in shard_cuts(train)}
    listed = load_split(shar_corpus, "train").to_eager()
    assert sorted(streamed) == sorted(listed.ids)
    cut = streamed[listed[0].id]  # the connected digits as one recording, text kept
    assert cut.load_audio().shape[1] == pytest.approx(listed[0].duration * 16000, abs=2)
    assert " ".join(s.text for s in sorted(cut.supervisions, key=lambda s: s.start)) == " ".join(
        s.text for s in sorted(listed[0].supervisions, key=lambda s: s.start)
    )


def test_ranks_read_their_own_shards_and_batches_repeat_for_a_seed(shar_corpus):
    every = shards(shar_corpus, "train")
    for epoch in (0, 1):
        mine = [rank_shards(every, 7, epoch, 2, r) for r in (0, 1)]
        assert len(mine[0]) == len(mine[1]) == 2
        assert sorted(s["cuts"] for m in mine for s in m) == sorted(s["cuts"] for s in every)
    assert rank_shards(every, 7, 0, 2, 0) != rank_shards(every, 7, 1, 2, 0) or rank_shards(
        every, 7, 2, 2, 0
    ) != rank_shards(every, 7, 0, 2, 0)  # the deal changes between epochs

    def batches(rank, epoch):
        s = SharSampler(
            shar_corpus,
            "train",
            lambda c: speech_sampler(c, 1500, True, 7),
            lambda c: c,
            7,
            2,
            rank,
        )
        s.set_epoch(epoch)
        return [[c.id for c in b] for b in s]

    first = batches(0, 1)
    assert first == batches(0, 1) and len(first) >= 2  # the same batches for a seed
    own = {c.id for s in rank_shards(every, 7, 1, 2, 0) for c in shard_cuts([s], data=False)}
    assert {i for b in first for i in b} <= own  # rank 0 reads nothing but its shards
    with pytest.raises(DataError, match="4 shard\\(s\\) for 5 processes"):
        SharSampler(shar_corpus, "train", None, None, 7, 5, 0)


def test_a_smoke_recipe_trains_from_shards_in_one_and_two_processes(tmp_path, shar_corpus):
    """recipes/smoke/ctc_teacher.yaml on the shards, one epoch: in this process, then as two
    torchrun processes that end with the same weights."""
    shared = [f"data.corpus={shar_corpus}", "data.shar=true", "data.max_frames=2500"]
    shared += ["train.max_epochs=1", "train.num_threads=1", "train.log_every=1"]
    assert main(["train", str(SMOKE), f"out_dir={tmp_path / 'one'}", *shared]) == 0
    lines = (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("split") == "dev" for line in lines)

    train_two_ranks([str(SMOKE), f"out_dir={tmp_path / 'two'}", *shared], tmp_path)
    ranks = json.loads((tmp_path / "two" / "ddp_ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["checksums"][0] == ranks["checksums"][1]
    state = json.loads((latest_checkpoint(tmp_path / "two") / "state.json").read_text())
    assert state["epoch"] == 1 and state["step"] > 0


def test_feature_shards_must_match_the_run(tmp_path, shar_corpus):
    out = tmp_path / "f"
    sizes = {"train": 12, "dev": 3, "test": 3}
    prepare(PrepareArgs("fsdd-connected", out, sizes=sizes, shar="fbank80", shard_size=6))
    assert set(shards(out, "train")[0]) == {"cuts", "features"}
    assert not list((out / "shar").glob(".features-*"))  # the scratch storage is gone
    cfg = tmp_path / "shar.yaml"
    cfg.write_text(CONFIG.format(out=tmp_path / "run", corpus=out, features="spec201"))
    assert main(["train", str(cfg)]) == 2  # spec201 asked, fbank80 stored: a clear error
    assert main(["train", str(cfg), "data.features=fbank80", "train.max_steps=2"]) == 0


def test_a_rank_streams_all_of_its_shards_under_torchrun(shar_corpus, monkeypatch):
    """torchrun's WORLD_SIZE/RANK must not make lhotse split a rank's shards a second time."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    fields = {"transcript": FieldConfig("transcript", "chars")}
    cfg = DataConfig(str(shar_corpus), fields, shar=True, max_frames=2000)
    sampler = Data(cfg, seed=5, world_size=2, rank=1).sampler("train", True)
    sampler.set_epoch(3)
    got = sorted(c.id for batch in sampler.metadata() for c in batch)
    mine = rank_shards(shards(shar_corpus, "train"), 5, 3, 2, 1)
    assert got == sorted(c.id for c in shard_cuts(mine, data=False))
    assert len(got) == 24
