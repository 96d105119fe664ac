"""The CLI: one clear line and exit code 2 for bad input, never a traceback."""

import subprocess
import sys

import pytest

from peerseq.cli import main


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "a.wav").write_bytes(b"not audio at all")
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "3_alice_1.wav").write_bytes(b"not audio at all")
    code = main(["prepare", "fsdd", "--src", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "3_alice_1.wav: not a readable audio file" in err[0]


def test_unknown_corpus_exit_code_from_the_console_script(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "peerseq", "prepare", "nope", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "unknown corpus 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_bad_sizes_argument_exits_2(capsys):
    # argparse refuses the value itself: SystemExit(2) before any command runs
    with pytest.raises(SystemExit) as e:
        main(["prepare", "fsdd-connected", "--out", "x", "--sizes", "train:5"])
    assert e.value.code == 2
    assert "expected split=N" in capsys.readouterr().err
