from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from peerseq.config import load_config, save_config, saved_config_changes
from peerseq.errors import PeerseqError
from peerseq.typed import from_dict, to_dict

# Module level: with postponed annotations, get_type_hints must be able to find these names.


@dataclass
class LossConfig:
    kind: Literal["ce", "kl"] = "ce"
    epsilon: float = 0.0


@dataclass
class PeerConfig:
    model: str
    loss: LossConfig = field(default_factory=LossConfig)
    checkpoint: Path | None = None


@dataclass
class OptimConfig:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    clip: float | None = 1.0


@dataclass
class RunConfig:
    name: str
    out_dir: Path = Path("runs")
    optim: OptimConfig = field(default_factory=OptimConfig)
    peers: dict[str, PeerConfig] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    amp: bool = False
    steps: int = 100


@dataclass
class DefaultPeers:
    peers: dict[str, PeerConfig] = field(
        default_factory=lambda: {"asr": PeerConfig("conformer"), "mt": PeerConfig("transformer")}
    )


@dataclass
class Checked:
    size: int = 1

    def __post_init__(self):
        if self.size <= 0:
            raise ValueError("size must be positive")


@dataclass
class HasChecked:
    inner: Checked = field(default_factory=Checked)


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


FULL = """\
name: demo
out_dir: exp/demo
optim: {lr: 3e-4, betas: [0.9, 0.99], clip: null}
peers:
  asr: {model: conformer, loss: {kind: kl, epsilon: 0.1}}
  st: {model: transformer, checkpoint: ckpt/st.pt}
seeds: [1, 2, 3]
amp: true
"""


def test_yaml_builds_nested_dataclasses(tmp_path):
    cfg = load_config(RunConfig, write(tmp_path, FULL), [])
    assert cfg == RunConfig(
        name="demo",
        out_dir=Path("exp/demo"),
        optim=OptimConfig(lr=3e-4, betas=(0.9, 0.99), clip=None),
        peers={
            "asr": PeerConfig("conformer", LossConfig("kl", 0.1)),
            "st": PeerConfig("transformer", checkpoint=Path("ckpt/st.pt")),
        },
        seeds=[1, 2, 3],
        amp=True,
    )
    assert isinstance(cfg.out_dir, Path) and isinstance(cfg.optim.betas, tuple)


def test_defaults_fill_what_yaml_leaves_out(tmp_path):
    cfg = load_config(RunConfig, write(tmp_path, "name: x\n"), [])
    assert cfg == RunConfig(name="x")
    assert load_config(RunConfig, None, ["name=x"]) == RunConfig(name="x")
    assert load_config(RunConfig, write(tmp_path, ""), ["name=x"]) == RunConfig(name="x")


def test_overrides_nested_and_in_dict_of_dataclasses(tmp_path):
    cfg = load_config(
        RunConfig,
        write(tmp_path, FULL),
        [
            "optim.lr=5e-4",
            "peers.asr.loss.epsilon=0.2",
            "peers.st.loss.kind=kl",
            "seeds=[7, 8]",
            "amp=false",
            "optim.clip=null",
            "optim.betas=[0.8, 0.9]",
            "out_dir=/tmp/x",
        ],
    )
    assert cfg.optim.lr == 5e-4 and cfg.optim.clip is None and cfg.optim.betas == (0.8, 0.9)
    assert cfg.peers["asr"] == PeerConfig("conformer", LossConfig("kl", 0.2))
    assert cfg.peers["st"].loss.kind == "kl"
    assert cfg.peers["st"].checkpoint == Path("ckpt/st.pt")  # untouched siblings survive
    assert cfg.seeds == [7, 8] and cfg.amp is False and cfg.out_dir == Path("/tmp/x")


def test_last_override_wins():
    assert load_config(RunConfig, None, ["name=a", "steps=1", "steps=2"]).steps == 2


@pytest.mark.parametrize(
    "text, value", [("3e-4", 3e-4), ("1e5", 1e5), ("1.0e5", 1e5), ("-2E-3", -2e-3), ("5", 5.0)]
)
def test_exponent_floats_in_overrides_and_files(tmp_path, text, value):
    cfg = load_config(RunConfig, None, ["name=x", f"optim.lr={text}"])
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == value
    cfg = load_config(RunConfig, write(tmp_path, f"name: x\noptim: {{lr: {text}}}\n"), [])
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == value


def test_override_edits_default_dict_entries():
    cfg = load_config(DefaultPeers, None, ["peers.asr.loss.kind=kl"])
    assert cfg.peers["asr"] == PeerConfig("conformer", LossConfig("kl"))
    assert cfg.peers["mt"] == PeerConfig("transformer")


def test_override_creates_new_dict_entry(tmp_path):
    cfg = load_config(
        RunConfig, write(tmp_path, FULL), ["peers.mt.model=lstm", "peers.mt.loss.epsilon=0.3"]
    )
    assert cfg.peers["mt"] == PeerConfig("lstm", LossConfig(epsilon=0.3))
    assert set(cfg.peers) == {"asr", "st", "mt"}


def test_new_dict_entry_must_be_complete(tmp_path):
    with pytest.raises(PeerseqError) as err:
        load_config(RunConfig, write(tmp_path, FULL), ["peers.mt.loss.epsilon=0.3"])
    msg = str(err.value)
    assert "peers.mt.model: missing required field" in msg
    assert "override 'peers.mt.loss.epsilon=0.3'" in msg


def test_str_override_keeps_text():
    cfg = load_config(RunConfig, None, ["name=001", "peers.a.model=true"])
    assert cfg.name == "001" and cfg.peers["a"].model == "true"
    assert load_config(RunConfig, None, ["name='a b'"]).name == "a b"


def test_type_error_names_dotted_path_and_file(tmp_path):
    path = write(tmp_path, FULL.replace("epsilon: 0.1", "epsilon: abc"), name="st.yaml")
    with pytest.raises(PeerseqError) as err:
        load_config(RunConfig, path, [])
    msg = str(err.value)
    assert "st.yaml" in msg
    assert "peers.asr.loss.epsilon: expected float, got 'abc'" in msg


def test_type_error_from_override_names_the_override(tmp_path):
    with pytest.raises(PeerseqError) as err:
        load_config(RunConfig, write(tmp_path, FULL), ["peers.st.loss.epsilon=abc"])
    msg = str(err.value)
    assert msg.startswith("override 'peers.st.loss.epsilon=abc': ")
    assert "peers.st.loss.epsilon: expected float, got 'abc'" in msg


def test_list_item_error_names_index():
    with pytest.raises(PeerseqError, match=r"seeds\[1\]: expected int, got 'x'"):
        from_dict(RunConfig, {"name": "a", "seeds": [1, "x"]})
    with pytest.raises(PeerseqError, match=r"seeds: expected list\[int\], got 3 \(int\)"):
        from_dict(RunConfig, {"name": "a", "seeds": 3})


def test_unknown_key_in_yaml_rejected_with_path(tmp_path):
    path = write(tmp_path, "name: a\noptim: {lrr: 0.1}\n")
    with pytest.raises(PeerseqError) as err:
        load_config(RunConfig, path, [])
    msg = str(err.value)
    assert "run.yaml" in msg
    assert "optim.lrr: unknown key; did you mean 'lr'? (known: lr, betas, clip)" in msg


def test_unknown_key_in_override_rejected_with_path():
    with pytest.raises(PeerseqError, match=r"peers\.st\.loss\.eps: unknown key"):
        load_config(RunConfig, None, ["name=a", "peers.st.model=x", "peers.st.loss.eps=0.1"])
    with pytest.raises(PeerseqError, match="nmae: unknown key"):
        load_config(RunConfig, None, ["nmae=a"])


def test_override_through_a_scalar_rejected():
    with pytest.raises(PeerseqError, match=r"optim\.lr: is 0\.001 \(float\), not a mapping"):
        load_config(RunConfig, None, ["name=a", "optim.lr.x=1"])


@pytest.mark.parametrize("bad", ["optim.lr", "=3", "optim..lr=3"])
def test_malformed_override(bad):
    with pytest.raises(PeerseqError, match="expected key=value"):
        load_config(RunConfig, None, [bad])


def test_literal_violation():
    with pytest.raises(PeerseqError, match=r"peers\.a\.loss\.kind: expected one of 'ce', 'kl'"):
        load_config(RunConfig, None, ["name=a", "peers.a.model=m", "peers.a.loss.kind=mse"])


def test_optional_none_and_value():
    cfg = from_dict(RunConfig, {"name": "a", "optim": {"clip": None}})
    assert cfg.optim.clip is None
    assert from_dict(RunConfig, {"name": "a", "optim": {"clip": 2}}).optim.clip == 2.0
    with pytest.raises(PeerseqError, match="optim.clip: expected float, got 'x'"):
        from_dict(RunConfig, {"name": "a", "optim": {"clip": "x"}})
    with pytest.raises(PeerseqError, match="name: expected str, got null"):
        from_dict(RunConfig, {"name": None})


def test_bool_is_strict():
    with pytest.raises(PeerseqError, match=r"amp: expected bool, got 1 \(int\)"):
        from_dict(RunConfig, {"name": "a", "amp": 1})
    with pytest.raises(PeerseqError, match="amp: expected bool, got 'true'"):
        from_dict(RunConfig, {"name": "a", "amp": "true"})
    with pytest.raises(PeerseqError, match=r"steps: expected int, got True \(bool\)"):
        from_dict(RunConfig, {"name": "a", "steps": True})
    with pytest.raises(PeerseqError, match=r"optim.lr: expected float, got True \(bool\)"):
        load_config(RunConfig, None, ["name=a", "optim.lr=true"])


def test_float_accepts_int_but_int_rejects_float():
    cfg = from_dict(RunConfig, {"name": "a", "optim": {"lr": 1}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    with pytest.raises(PeerseqError, match=r"steps: expected int, got 1.5 \(float\)"):
        from_dict(RunConfig, {"name": "a", "steps": 1.5})


def test_tuple_length_checked():
    with pytest.raises(PeerseqError, match="optim.betas: expected 2 items, got 1"):
        from_dict(RunConfig, {"name": "a", "optim": {"betas": [0.9]}})


def test_missing_required_field_names_path(tmp_path):
    with pytest.raises(PeerseqError, match=r"run\.yaml: peers\.st\.model: missing required"):
        load_config(RunConfig, write(tmp_path, "name: a\npeers: {st: {loss: {}}}\n"), [])
    with pytest.raises(PeerseqError, match="^name: missing required field"):
        load_config(RunConfig, None, [])


def test_dict_keys_must_be_strings():
    with pytest.raises(PeerseqError, match="peers.1: bad key: expected str, got 1"):
        from_dict(RunConfig, {"name": "a", "peers": {1: {"model": "m"}}})


def test_post_init_value_error_is_reported_with_path():
    with pytest.raises(PeerseqError, match="inner: size must be positive"):
        load_config(HasChecked, None, ["inner.size=0"])


def test_to_dict_is_plain_yaml_data(tmp_path):
    data = to_dict(load_config(RunConfig, write(tmp_path, FULL), []))
    assert data["out_dir"] == "exp/demo"
    assert data["optim"] == {"lr": 3e-4, "betas": [0.9, 0.99], "clip": None}
    assert data["peers"]["st"]["checkpoint"] == "ckpt/st.pt"
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    with pytest.raises(TypeError):
        to_dict(RunConfig)


def test_save_load_round_trip(tmp_path):
    cfg = load_config(RunConfig, write(tmp_path, FULL), ["optim.lr=1e-10", "steps=7"])
    cfg.name = "1e5"  # a string that an unquoted YAML scalar would read as a float
    cfg.peers["x"] = PeerConfig("001", checkpoint=Path("a b/c.pt"))
    saved = tmp_path / "run_dir" / "config.yaml"
    save_config(cfg, saved)
    back = load_config(RunConfig, saved, [])
    assert back == cfg
    assert isinstance(back.name, str) and isinstance(back.optim.betas, tuple)


def test_a_key_added_since_a_run_was_saved_counts_as_its_default(tmp_path):
    """A run saved before peerseq had a key resumes when the key keeps its default (the old
    behaviour), and is refused, naming the key, when it is set otherwise."""
    cfg = load_config(RunConfig, write(tmp_path, FULL), [])
    saved = tmp_path / "config.yaml"
    save_config(cfg, saved)
    old = yaml.safe_load(saved.read_text())
    del old["steps"], old["optim"]["clip"]  # as an older peerseq, without these keys, wrote it
    saved.write_text(yaml.safe_dump(old))
    same = load_config(RunConfig, write(tmp_path, FULL), ["optim.clip=1.0"])  # the defaults
    assert saved_config_changes(same, saved) == []
    changed = load_config(RunConfig, write(tmp_path, FULL), ["steps=5", "optim.clip=null"])
    assert saved_config_changes(changed, saved) == ["optim.clip", "steps"]
    old["gone"] = 1  # a key peerseq no longer has: compared as written
    saved.write_text(yaml.safe_dump(old))
    assert saved_config_changes(same, saved) == ["gone", "optim.clip", "steps"]


def test_yaml_not_a_mapping(tmp_path):
    with pytest.raises(PeerseqError, match=r"list\.yaml: expected a mapping .* got list"):
        load_config(RunConfig, write(tmp_path, "- a\n- b\n", name="list.yaml"), [])


def test_unreadable_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "name: a\noptim: {lr: 1\n", name="broken.yaml")
    with pytest.raises(PeerseqError, match=r"broken\.yaml:\d+:\d+: not valid YAML"):
        load_config(RunConfig, path, [])
    with pytest.raises(PeerseqError, match=r"missing\.yaml: cannot read config"):
        load_config(RunConfig, tmp_path / "missing.yaml", [])


def test_cls_must_be_a_dataclass():
    with pytest.raises(TypeError):
        load_config(dict, None, [])


def test_base_files_merge_under_the_file(tmp_path):
    (tmp_path / "recipe").mkdir()
    write(tmp_path, "name: base\noptim: {lr: 0.5, clip: 2.0}\nseeds: [1, 2]\n", "common.yaml")
    write(tmp_path, "base: common.yaml\nsteps: 7\n", "mid.yaml")
    top = write(
        tmp_path / "recipe", "base: [../mid.yaml]\nname: top\noptim: {lr: 0.25}\nseeds: [3]\n"
    )
    cfg = load_config(RunConfig, top, ["optim.clip=1.5"])
    # mappings merge key by key; lists and scalars replace; overrides come last
    assert cfg.name == "top" and cfg.steps == 7 and cfg.seeds == [3]
    assert cfg.optim.lr == 0.25 and cfg.optim.clip == 1.5


def test_base_errors_name_the_file(tmp_path):
    loop_a = write(tmp_path, "base: b.yaml\nname: a\n", "a.yaml")
    write(tmp_path, "base: a.yaml\n", "b.yaml")
    with pytest.raises(PeerseqError, match="include each other"):
        load_config(RunConfig, loop_a, [])
    missing = write(tmp_path, "base: nowhere.yaml\nname: m\n", "m.yaml")
    with pytest.raises(PeerseqError, match=r"m\.yaml: base: nowhere\.yaml: no such file"):
        load_config(RunConfig, missing, [])
    with pytest.raises(PeerseqError, match="expected a path or a list"):
        load_config(RunConfig, write(tmp_path, "base: {x: 1}\n", "d.yaml"), [])


@dataclass
class Item:
    name: str
    weight: float = 1.0


@dataclass
class HasItems:
    items: list[Item] = field(default_factory=list)


def test_override_addresses_list_items_by_index(tmp_path):
    path = write(tmp_path, "items: [{name: a}, {name: b, weight: 2.0}]\n")
    cfg = load_config(HasItems, path, ["items.1.weight=0.5", "items.0.name=z"])
    assert cfg.items == [Item("z"), Item("b", 0.5)]
    with pytest.raises(PeerseqError, match=r"items\.2: expected an index below 2"):
        load_config(HasItems, path, ["items.2.weight=1"])
    with pytest.raises(PeerseqError, match="expected an index below 0"):
        load_config(HasItems, None, ["items.0.weight=1"])
    # a bad value through an index is blamed on the override, not the file
    with pytest.raises(PeerseqError, match=r"override 'items.1.weight=abc'.*expected float"):
        load_config(HasItems, path, ["items.1.weight=abc"])
