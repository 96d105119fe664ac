"""Every run config a recipe ships loads as an Experiment and links only peers it declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerseq.config import load_config
from peerseq.experiment import Experiment

RECIPE_CONFIGS = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "recipes").glob("*/*.yaml")
    # common files are bases, not runs; recipe.yaml is a recipe's declaration (tests/recipes)
    if "common" not in p.stem and p.name != "recipe.yaml"
)


def test_the_recipe_configs_are_found():
    """An empty glob would turn the next test into one skipped case ("empty parameter set")."""
    names = {f"{p.parent.name}/{p.name}" for p in RECIPE_CONFIGS}
    assert {"smoke/st.yaml", "smoke/em_ctc.yaml", "smoke/mlkd_students.yaml"} <= names


@pytest.mark.parametrize("path", RECIPE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_config_loads_and_links_its_own_peers(path):
    exp = load_config(Experiment, path)
    assert exp.peers
    for link in exp.links:
        assert link.a in exp.peers and link.b in exp.peers, (link.a, link.b)
