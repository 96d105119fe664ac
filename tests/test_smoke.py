"""The smoke recipes (recipes/smoke/), each run end to end at tiny size: the training loss falls
and the dev metric beats chance (a system that ignores its input, see chance_score).

CTC peers must decode dev better (CER) than the most frequent training transcript does.
Translation peers are judged on their dev loss instead of a decoding metric: after a minute of
CPU training a tiny model writes repetitive German ("Ein Mann in einem und einem ...") whose
BLEU and chrF are no better than random training sentences (measured: chrF 15 against 17 with
1,000 utterances and 250 steps), so a decoding metric cannot tell learning from chance here.
Trained without label smoothing (so the logged loss is the NLL), their dev NLL must be below
the cross-entropy of the dev targets under the training targets' token frequencies: a model
that ignores its input and knows only how often each token occurs.

Run lengths: what these checks need, not more. Decoding dev costs most of a translation run,
its metric is not what is checked, and it does not change training: only the ST peer of (b)
decodes (with beam 2, not the recipes' 5), enough to run the validation decoding end to end.
CTC runs are shorter than the recipes' (dev CER measured at the epochs used, against a chance
CER of 78 on this corpus: EM-CTC seq 62 at epoch 4; the teacher 50 at epoch 5; students a/b
57/64 at epoch 4).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from peerseq.config import load_config
from peerseq.data.manifest import load_split, load_text_split
from peerseq.data.tokenizers import CharTokenizer, load_tokenizer
from peerseq.experiment import Experiment
from peerseq.metrics.score import chance_score, higher_is_better
from peerseq.tokens import EOS
from peerseq.train import Trainer

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "smoke"


def run(recipe: str, tmp: Path, *overrides: str) -> tuple[Experiment, list[dict]]:
    exp = load_config(
        Experiment, RECIPES / recipe, [f"out_dir={tmp / Path(recipe).stem}", *overrides]
    )
    Trainer(exp).fit()
    records = [
        json.loads(x) for x in (Path(exp.out_dir) / "metrics.jsonl").read_text().splitlines()
    ]
    return exp, records


def check(exp: Experiment, records: list[dict], peer: str) -> None:
    train_totals = [r["total"] for r in records if r["split"] == "train"]
    dev = [r for r in records if r["split"] == "dev"]
    assert train_totals[-1] < 0.9 * train_totals[0], f"loss did not fall: {train_totals}"
    assert dev[-1]["total"] < dev[0]["total"], "dev loss did not fall"
    metric = exp.peers[peer].decode.metric
    column = exp.data.fields[exp.peers[peer].predicts].column
    corpus = Path(exp.data.corpus)
    rows_dev = [r[column] for r in load_text_split(corpus, "dev")]
    rows_train = [r[column] for r in load_text_split(corpus, "train")]
    if metric in ("wer", "cer"):
        norm = CharTokenizer().normalize
        rows_dev, rows_train = [norm(x) for x in rows_dev], [norm(x) for x in rows_train]
    limit = exp.data.limit_dev
    rows_dev = rows_dev[:limit] if limit else rows_dev
    if exp.peers[peer].loss == "nll":  # a translation peer: judged on its dev NLL
        tok = load_tokenizer(corpus, exp.data.fields[exp.peers[peer].predicts].tokenizer)
        chance, got, metric = unigram_nll(tok, rows_train, rows_dev), dev[-1][f"{peer}/nll"], "nll"
    else:
        chance, got = chance_score(rows_dev, rows_train, metric), dev[-1][f"{peer}/{metric}"]
    beats = got > chance if higher_is_better(metric) else got < chance
    assert beats, f"{peer} dev {metric} {got:.2f} does not beat chance {chance:.2f}"


def unigram_nll(tok, train_texts: list[str], dev_texts: list[str]) -> float:
    """Per-token cross-entropy of dev targets (+EOS) under add-one training token frequencies."""
    counts = Counter(i for t in train_texts for i in [*tok.encode(t), EOS])
    total = sum(counts.values()) + tok.vocab_size
    ids = [i for t in dev_texts for i in [*tok.encode(t), EOS]]
    return -sum(math.log((counts[i] + 1) / total) for i in ids) / len(ids)


@pytest.fixture(scope="module")
def m30ks(m30k_speech_300):
    return m30k_speech_300


def test_a_st_alone(tmp_path, m30ks):
    exp, rec = run(
        "st.yaml",
        tmp_path,
        f"data.corpus={m30ks}",
        "peers.st.label_smoothing=0.0",
        "peers.st.decode.metric=none",
        "train.max_epochs=8",
    )
    check(exp, rec, "st")


def test_b_st_mt_mutual_learning(tmp_path, m30ks):
    exp, rec = run(
        "st_mt_ml.yaml",
        tmp_path,
        f"data.corpus={m30ks}",
        "peers.st.label_smoothing=0.0",
        "peers.mt.label_smoothing=0.0",
        "peers.st.decode.metric=chrf",
        "peers.mt.decode.metric=none",
        "peers.st.decode.beam=2",
        "train.max_epochs=8",
    )
    assert any("beta" in r and r["split"] == "train" for r in rec)
    assert "st/chrf" in [r for r in rec if r["split"] == "dev"][-1]  # ST decoded dev
    check(exp, rec, "st")
    check(exp, rec, "mt")


@pytest.fixture(scope="module")
def fsddc(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "fsddc"


def test_c_em_ctc(tmp_path, fsddc):
    exp, rec = run("em_ctc.yaml", tmp_path, f"data.corpus={fsddc}", "train.max_epochs=4")
    assert any("l2(em,seq)" in r for r in rec)
    check(exp, rec, "seq")


def test_d_mlkd_students_with_cached_teacher_labels(tmp_path, fsddc):
    teacher_exp, teacher_rec = run(
        "ctc_teacher.yaml", tmp_path, f"data.corpus={fsddc}", "train.max_epochs=5"
    )
    check(teacher_exp, teacher_rec, "teacher")  # a teacher better than chance to learn from
    teacher = f"{tmp_path / 'ctc_teacher'}:teacher"
    exp, rec = run(
        "mlkd_students.yaml",
        tmp_path,
        f"data.corpus={fsddc}",
        f"peers.teacher.model.init_from={teacher}",
        "train.max_epochs=4",
    )
    cache = list((Path(exp.out_dir) / "pseudo_labels").glob("teacher-*.json"))
    assert len(cache) == 1  # decoded once, named by the teacher's weights
    labels = json.loads(cache[0].read_text())
    assert len(labels) == len(list(load_split(fsddc, "train")))
    assert any("seqkd(teacher->a)" in r and "kl(b||a)" in r for r in rec)
    check(exp, rec, "a")
    check(exp, rec, "b")
