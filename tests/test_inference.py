"""Using what was trained: a self-contained export moved to another folder transcribes audio
files through the CLI and the Python API with the same output as the run it came from; a text
model translates sentences; bad input exits 2 naming it."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

import peerseq
from peerseq.cli import main
from peerseq.paths import bundled_data_dir
from peerseq.rundir.layout import RunDir, weights_file
from peerseq.rundir.weights import load_weights, save_weights
from peerseq.train import Trainer
from peerseq.typed import from_dict
from tests.engine.helpers import mt_experiment

AUDIO = sorted((bundled_data_dir() / "fsdd" / "recordings").glob("*_george_*.wav"))[:5]


@pytest.fixture(scope="module")
def ctc_run(tmp_path_factory):
    """A tiny CTC model trained 3 updates on FSDD digits (8 kHz recordings, resampled), whose
    blank is then made unlikely so that it writes characters: the outputs compared below are
    non-empty, not all-blank."""
    from peerseq.experiment import Experiment

    tmp = tmp_path_factory.mktemp("inference")
    exp = from_dict(
        Experiment,
        {
            "out_dir": str(tmp / "run"),
            "data": {
                "corpus": str(tmp / "fsdd"),
                "prepare": {"name": "fsdd", "sizes": {"train": 40, "dev": 8, "test": 8}},
                "fields": {"transcript": {"column": "transcript", "tokenizer": "chars"}},
                "max_frames": 4000,
            },
            "peers": {
                "asr": {
                    "model": {"preset": "asr_transformer_ctc", "size": "tiny"},
                    "reads": "speech",
                    "predicts": "transcript",
                    "loss": "ctc",
                    "decode": {"metric": "cer"},
                }
            },
            "train": {
                "max_steps": 3,
                "num_threads": 1,
                "seed": 1,
                "early_stop_peer": "asr",
                "log_every": 1,
            },
        },
    )
    Trainer(exp).fit()
    best = weights_file(RunDir(tmp / "run").best, "asr")
    weights = load_weights(best)
    weights["output_layer.bias"] = weights["output_layer.bias"].clone()
    weights["output_layer.bias"][0] = -50.0  # blank never wins
    save_weights(best, weights)
    return tmp


def test_a_moved_export_transcribes_as_the_run_does(ctc_run, tmp_path, capsys):
    export = ctc_run / "export"
    argv = ["export", str(ctc_run / "run"), "--peer", "asr", "--out", str(export)]
    assert main([*argv, "--format", "onnx"]) == 0
    from_run = peerseq.load(ctc_run / "run").transcribe(AUDIO)
    assert len(from_run) == len(AUDIO) and all(r.text for r in from_run)
    # elsewhere, with the corpus it was trained on gone: the export carries what it needs
    moved = tmp_path / "elsewhere" / "digits"
    shutil.copytree(export, moved)
    corpus, hidden = ctc_run / "fsdd", ctc_run / "fsdd-away"
    corpus.rename(hidden)
    try:
        model = peerseq.load(moved)
        api = model.transcribe(AUDIO, batch_size=2)
        capsys.readouterr()
        assert main(["transcribe", str(moved), *map(str, AUDIO)]) == 0
        cli = capsys.readouterr().out.splitlines()
        assert main(["transcribe", str(moved), str(AUDIO[0]), "--format", "json"]) == 0
        as_json = json.loads(capsys.readouterr().out)
        onnx = peerseq.load(moved, onnx=True)
        via_onnx = onnx.transcribe(AUDIO, batch_size=2)
        assert main(["transcribe", str(moved), *map(str, AUDIO), "--onnx"]) == 0
        onnx_cli = capsys.readouterr().out.splitlines()
        # the graph itself: log-probabilities within 1e-4 of PyTorch's on a padded batch
        from lhotse import CutSet

        from peerseq.inference import _cut

        cuts = CutSet.from_cuts(_cut(p, i) for i, p in enumerate(AUDIO))
        feats, lens = model.features.features(cuts)
        with torch.no_grad():
            ours, theirs = model.forward(feats, lens), onnx.forward(feats, lens)
        assert torch.equal(ours.lengths, theirs.lengths)
        for i, n in enumerate(ours.lengths.tolist()):
            assert float((ours.log_probs[i, :n] - theirs.log_probs[i, :n]).abs().max()) <= 1e-4
    finally:
        hidden.rename(corpus)
    assert [r.text for r in api] == [r.text for r in from_run] == [r.text for r in via_onnx]
    assert onnx_cli == [f"{p}\t{r.text}" for p, r in zip(AUDIO, api, strict=True)]
    assert cli == [f"{p}\t{r.text}" for p, r in zip(AUDIO, api, strict=True)]
    assert as_json[0]["text"] == api[0].text and as_json[0]["source"] == str(AUDIO[0])
    starts = [t["start"] for t in as_json[0]["timings"]]
    assert len(starts) == len(api[0].timings) > 0 and starts == sorted(starts)
    assert 0 <= starts[-1] <= 1.5  # within the recording (FSDD digits last under a second)
    # readable by others: not mkstemp's 0600
    for f in (moved / "best").iterdir():
        assert os.stat(f).st_mode & stat.S_IROTH
    card = (moved / "README.md").read_text()
    assert "peerseq transcribe" in card and "fsdd" in card


def test_folders_are_searched_and_bad_input_is_named(ctc_run, tmp_path, capsys):
    folder = tmp_path / "in" / "deep"
    folder.mkdir(parents=True)
    for p in AUDIO[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "notes.txt").write_text("not audio")
    got = peerseq.load(ctc_run / "run").transcribe(tmp_path / "in")
    assert [Path(r.source).name for r in got] == [p.name for p in AUDIO[:2]]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF but not really")
    capsys.readouterr()
    assert main(["transcribe", str(ctc_run / "run"), str(bad)]) == 2
    assert f"{bad}: not an audio file we can read" in capsys.readouterr().err
    assert main(["transcribe", str(ctc_run / "run"), str(tmp_path / "missing.wav")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["translate", str(ctc_run / "run"), "--text", "one two"]) == 2
    assert "translates speech" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mt_run(tmp_path_factory, m30k_32):
    """A tiny text model (Multi30k En -> De), two updates, decoding at most 6 tokens."""
    tmp = tmp_path_factory.mktemp("mt")
    exp = mt_experiment(
        tmp,
        {"mt": {"model": {"preset": "mt_transformer", "size": "tiny"}, "reads": "source"}},
        corpus=m30k_32,
    )
    exp.peers["mt"].decode.max_len_b = 6
    Trainer(exp).fit()
    return tmp / "run"


def test_a_text_model_translates_sentences(mt_run, tmp_path, capsys):
    sentences = ["a man is riding a bike .", "two dogs play in the snow ."]
    model = peerseq.load(mt_run)
    got = model.translate(sentences)
    assert [r.source for r in got] == sentences and all(isinstance(r.text, str) for r in got)
    text_file = tmp_path / "in.txt"
    text_file.write_text("\n".join(sentences) + "\n")
    capsys.readouterr()
    assert main(["translate", str(mt_run), "--text-file", str(text_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{s}\t{r.text}" for s, r in zip(sentences, got, strict=True)
    ]
    with torch.no_grad():
        assert main(["transcribe", str(mt_run), str(AUDIO[0])]) == 2


def test_evaluation_on_another_corpus_checks_its_tokenizers(
    mt_run, tmp_path, capsys, m30k_32, m30k_64
):
    shutil.copytree(mt_run, tmp_path / "run")  # evaluation writes into the run
    run = str(tmp_path / "run")
    capsys.readouterr()
    # m30k_64 was prepared with other vocabularies: its token ids mean other pieces
    assert main(["evaluate", run, "--data", str(m30k_64), "--weights", "last"]) == 2
    assert "tokenizer 'spm_de' is not the one the run was trained with" in capsys.readouterr().err
    assert main(["evaluate", run, "--data", str(m30k_32), "--weights", "last"]) == 0
    scores = json.loads((tmp_path / "run" / "eval" / "test.json").read_text())
    assert scores["mt"]["weights"] == "last" and scores["mt"]["corpus"] == str(m30k_32)


def test_a_run_report_page_shows_the_run(ctc_run, tmp_path, capsys):
    """peerseq report RUN: one self-contained page with the curves, the time, a posteriorgram of
    the CTC peer and the config; rendered by headless Chromium where it is installed."""
    run = tmp_path / "run"
    shutil.copytree(ctc_run / "run", run)
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    for part in (
        "Training terms",
        "Learning rates",
        "Dev",
        "Time",
        "Config",
        "asr_transformer_ctc",
    ):
        assert part in page
    assert page.count("<svg") >= 4  # losses, learning rates, dev metric and loss, posteriorgram
    assert "No posteriorgram" not in page and "src=" not in page  # inline: nothing to fetch
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): page not rendered")
    import subprocess

    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400",
         f"--screenshot={shot}", run.joinpath("report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.stat().st_size > 20_000  # a page of plots, not a blank one


def test_an_encoder_decoder_exports_its_encoder_and_decoder_step_to_onnx(mt_run, tmp_path):
    """encoder.onnx and decoder_step.onnx give PyTorch's next-token log-probabilities (1e-4)."""
    import onnxruntime

    out = tmp_path / "export"
    argv = ["export", str(mt_run), "--peer", "mt", "--out", str(out)]
    assert main([*argv, "--weights", "last", "--format", "onnx"]) == 0
    assert json.loads((out / "export.json").read_text())["onnx"] == [
        "encoder.onnx",
        "decoder_step.onnx",
    ]
    model = peerseq.load(out)
    torch_model = model.peer.model
    reader = model.run.data.tokenizers["source"]
    from peerseq.data.batching import pad_tokens

    src, lengths = pad_tokens(
        [reader.encode(s) for s in ["a man in a red shirt .", "two dogs .", "a girl runs ."]]
    )
    enc = onnxruntime.InferenceSession(str(out / "encoder.onnx"))
    step = onnxruntime.InferenceSession(str(out / "decoder_step.onnx"))
    memory, mask = enc.run(None, {"src": src.numpy(), "lengths": lengths.numpy()})
    tokens = torch.tensor([[1, 7, 9, 11], [1, 5, 5, 6], [1, 20, 4, 8]])
    got = step.run(None, {"tokens": tokens.numpy(), "memory": memory, "memory_mask": mask})[0]
    with torch.no_grad():
        ref_memory = torch_model.encode(src, lengths)
        ref, _ = torch_model.decode_step(tokens, ref_memory, None)
    assert (mask == ref_memory.mask.numpy()).all()
    assert float(abs(torch.from_numpy(memory) - ref_memory.x).max()) <= 1e-4
    assert float(abs(torch.from_numpy(got) - ref).max()) <= 1e-4
