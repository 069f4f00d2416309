"""The benchmark scripts run, and ``--save`` records what they print for the book's appendix."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import record  # noqa: E402


def test_recorded_writes_what_was_printed_under_a_header(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(record, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["benchmarks/demo.py", "--quick"])
    with record.recorded("demo", save=True):
        print("a table line")
    text = (tmp_path / "results" / "demo.txt").read_text()
    header, body = text.split("\n\n", 1)
    assert "cores (" in header and "torch " in header                       # where it was measured
    assert "$ .venv/bin/python benchmarks/demo.py --quick" in header         # how to measure it again
    assert body == "a table line\n"              # the "saved" line comes after the file is written
    assert "a table line" in capsys.readouterr().out                          # still printed


def test_recorded_keeps_the_previous_table_when_a_run_fails_or_is_not_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "RESULTS", tmp_path)
    (tmp_path / "demo.txt").write_text("previous\n")
    with pytest.raises(RuntimeError):
        with record.recorded("demo", save=True):
            print("half a table")
            raise RuntimeError("the build failed")
    with record.recorded("demo", save=False):
        print("not saved")
    assert (tmp_path / "demo.txt").read_text() == "previous\n"


def test_reference_speed_script_prints_its_table_and_verdict():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reference_speed.py"), "--quick",
                           "--kinds", "rnn", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for variant in ("readable", "fast", "native", "oneDNN"):
        assert f"rnn   {variant}" in done.stdout
    assert "fast / native:" in done.stdout and "target <= 1.2x" in done.stdout
