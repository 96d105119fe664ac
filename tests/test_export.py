"""peerseq export: one peer as a standalone run, EM-Network's auxiliary network left behind."""

from __future__ import annotations

import json

import pytest
import torch

from peerseq.cli import main
from peerseq.metrics.cost import count_parameters
from peerseq.models.presets import build
from peerseq.runs import decode_split, load_run
from peerseq.train import Trainer
from tests.engine.helpers import mt_experiment


@pytest.fixture(scope="module")
def em_run(tmp_path_factory, m30k_32):
    """EM-AED on 32 Multi30k sentences, 6 updates (dropout on, so train and eval differ)."""
    tmp = tmp_path_factory.mktemp("export")
    exp = mt_experiment(
        tmp,
        {
            "seq": {
                "model": {"preset": "mt_transformer", "size": "tiny"},
                "reads": "source",
                "decode": {"beam": 2, "max_len_b": 8},
            },
            "em": {
                "model": {"preset": "em_network", "size": "tiny", "mask_prob": 0.5},
                "reads": "@seq",
                "reads_also": "target",
                "decode": {"metric": "none"},
            },
        },
        [{"a": "em", "b": "seq", "kind": "kl", "weight": 2.0}],
        src="de",
        tgt="en",
        corpus=m30k_32,
        max_steps=6,
    )
    exp.optim.lr = 0.01
    Trainer(exp).fit()
    return tmp / "run"


def test_export_drops_the_auxiliary_network_and_decodes_identically(em_run, tmp_path, capsys):
    out = tmp_path / "seq"
    argv = ["export", str(em_run), "--peer", "seq", "--out", str(out), "--evaluate", "test"]
    assert main(argv) == 0
    assert "exported peer 'seq'" in capsys.readouterr().out
    assert (out / "eval" / "test.json").is_file() and (out / "eval" / "seq.test.jsonl").is_file()
    record = json.loads((out / "export.json").read_text())
    assert record["left_out"] == ["em"]
    trained = load_run(em_run)
    # the export carries its tokenizers, not the corpus: splits come from the run's corpus
    exported = load_run(out, data=trained.exp.data.corpus)
    assert list(exported.peers) == ["seq"] and exported.exp.links == []
    model = exported.peers["seq"].model
    # exactly a plain model's parameters: nothing of the auxiliary network is left
    plain = build(
        "mt_transformer",
        "tiny",
        vocab=model.output_layer.out_features,
        src_vocab=model.frontend.embedding.num_embeddings,
    )
    assert count_parameters(model) == count_parameters(plain) == record["parameters"]
    assert not any(k.startswith("aux") for k in model.state_dict())
    assert count_parameters(trained.peers["em"].model.aux) > 0
    for name, t in trained.peers["seq"].model.state_dict().items():
        assert torch.equal(t, model.state_dict()[name]), name
    mine, theirs = decode_split(exported, "seq", "test"), decode_split(trained, "seq", "test")
    assert mine.ids == theirs.ids and mine.hyps == theirs.hyps
    assert any(h for h in mine.hyps)  # something was written, not only empty strings
    # the README's commands: an export decodes on its source run's corpus without --data
    capsys.readouterr()
    assert main(["decode", str(out), "--peer", "seq", "--split", "test", "--beam", "2"]) == 0
    assert "wrote 32 hypotheses" in capsys.readouterr().out


def test_export_refuses_the_auxiliary_peer(em_run, tmp_path, capsys):
    assert main(["export", str(em_run), "--peer", "em", "--out", str(tmp_path / "em")]) == 2
    assert "export 'seq' instead" in capsys.readouterr().err
    assert main(["export", str(em_run), "--peer", "nope", "--out", str(tmp_path / "x")]) == 2


def test_export_of_a_same_as_peer_and_into_a_used_directory(tmp_path, capsys, m30k_32):
    """R-Drop's second view exports as the model it is a view of; --out must be new."""
    exp = mt_experiment(
        tmp_path,
        {
            "seq": {"model": {"preset": "mt_transformer", "size": "tiny"}, "reads": "source"},
            "drop": {
                "model": {"preset": "mt_transformer", "same_as": "seq"},
                "reads": "source",
                "decode": {"metric": "none"},
            },
        },
        [{"a": "seq", "b": "drop", "kind": "kl_symmetric"}],
        corpus=m30k_32,
    )
    Trainer(exp).fit()
    out = tmp_path / "drop"
    assert main(["export", str(tmp_path / "run"), "--peer", "drop", "--out", str(out)]) == 0
    exported = load_run(out).peers["drop"].model.state_dict()
    trained = load_run(tmp_path / "run").peers["seq"].model.state_dict()
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--peer", "seq", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
