"""One tiny reproduce per recipe, made once per test session and shared by the tests that read
it (few methods, one epoch: they check the pipeline and the methods, not the scores)."""

from __future__ import annotations

import pytest

from tests.recipes.helpers import reproduce

# one epoch on 6 training utterances, 4 dev and 6 test ones
MLKD_TINY = ["train.max_epochs=1", "data.limit_train=6", "data.limit_dev=4", "data.limit_test=6"]
# one epoch on 40 training utterances or sentences, 8 dev and 10 test ones
EM_TINY = ["train.max_epochs=1", "data.limit_train=40", "data.limit_dev=8", "data.limit_test=10"]


@pytest.fixture(scope="session")
def mlkd_tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlkd")
    done = reproduce("mlkd", scale="tiny", out=out, results=out / "results",
                     methods=["mlkd", "multi", "three"], extra=MLKD_TINY)  # fmt: skip
    return out, done


@pytest.fixture(scope="session")
def em_tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("em_network")
    common = dict(scale="tiny", out=out, results=out / "results", extra=EM_TINY)
    done = reproduce("em_network", settings={"task": "asr"}, methods=["ctc", "em"], **common)
    done += reproduce("em_network", settings={"task": "mt", "sweep": "alpha=0"},
                      methods=["em", "seqkd"], **common)  # fmt: skip
    return out, done


# one epoch of ~10 updates, logged every 2; 8 dev and 20 test sentences
ST_TINY = ["train.max_epochs=1", "train.log_every=2", "data.limit_dev=8", "data.limit_test=20"]


@pytest.fixture(scope="session")
def st_tiny(m30k_speech_300, tmp_path_factory):
    out = tmp_path_factory.mktemp("st_mutual")
    done = reproduce("st_mutual", scale="tiny", out=out, results=out / "results",
                     data=str(m30k_speech_300), methods=["kd", "ml", "cascade"],
                     extra=ST_TINY)  # fmt: skip
    return out, done
