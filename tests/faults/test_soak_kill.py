"""The quick kill soak of ``benchmarks/soak_kill.py``: one SIGKILL at each kind of point.

A real training process is killed during a batch, during an epoch's file writes and
inside the SQLite transaction of a commit, then ``convscope embed`` inside the
transaction of its cache; each time the run is resumed. The finished run must equal an
uninterrupted one bit for bit, and a reader in another process must never have seen a
half-written epoch.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_kill.py"
_SPEC = importlib.util.spec_from_file_location("soak_kill", _PATH)
soak_kill = importlib.util.module_from_spec(_SPEC)
sys.modules["soak_kill"] = soak_kill
_SPEC.loader.exec_module(soak_kill)


@pytest.mark.slow
def test_quick_soak_loses_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    report = soak_kill.soak(soak_kill.QUICK, tmp_path, log=lines.append)
    figures = report.to_dict()
    assert figures["kills_by_point"] == {
        "train:train.batch": 1,
        "train:file.before-rename": 1,
        "train:store.before-commit": 1,
        "embed:store.before-commit": 1,
    }, lines
    assert report.problems == []
    assert figures["epochs_lost"] == 0 and figures["corrupt_runs"] == 0
    assert figures["half_written_seen"] == 0 and figures["reader_errors"] == 0
    assert figures["reader_reads"] > 10  # the reader really read while the kills went on
    # the third kill came inside epoch 2's commit: epoch 1 was there, epoch 2 was not
    assert report.kills[2].epochs_after == [0, 1]
    assert figures["ok"] is True
