"""The package's layers: every module imports only from its own layer or the ones below it, so
the engine never reaches the loop, evaluation or the command line, and models never reach
decoding. The README's "Layout" section describes the same order."""

from __future__ import annotations

import ast
from pathlib import Path

import peerseq

ROOT = Path(peerseq.__file__).parent

# lowest first; a module's layer is the first entry its dotted name starts with
LAYERS = [
    ["peerseq.errors", "peerseq.tokens", "peerseq.files", "peerseq.typed", "peerseq.paths"],
    ["peerseq.config", "peerseq.distributed"],
    ["peerseq.data", "peerseq.metrics", "peerseq.rundir"],
    ["peerseq.models"],
    ["peerseq.losses", "peerseq.search"],
    ["peerseq.engine"],
    ["peerseq.experiment"],
    ["peerseq.decoding"],
    ["peerseq.build", "peerseq.run_state", "peerseq.validation", "peerseq.training_console"],
    ["peerseq.train", "peerseq.runs", "peerseq.export", "peerseq.inference", "peerseq.onnx_export"],
    ["peerseq.report"],
    ["peerseq.cli", "peerseq.cli_use", "peerseq.demo", "peerseq.__main__", "peerseq"],
]


def layer_of(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    raise AssertionError(f"{module}: in no layer; add it to LAYERS (and the README's layout)")


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every peerseq import, at the top or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    known = modules()
    # `from peerseq.x import y`: y is a module when peerseq.x.y is one, else a name in peerseq.x
    return [(line, n) for line, n in found if n.startswith("peerseq") and n in known]


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for name, path in modules().items():
        for line, target in imports(path):
            if layer_of(target) > layer_of(name):
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {name} -> {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The check itself can fail: an engine module importing the loop is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from peerseq.train import Trainer\nimport peerseq.engine.peer\n")
    found = [t for _, t in imports(bad)]
    assert "peerseq.train" in found
    assert layer_of("peerseq.train") > layer_of("peerseq.engine.peer")


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT.parent)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 440
    }
    assert not long, f"modules over ~400 lines (split them by what they do): {long}"
