"""Named crash points: SIGKILL at the N-th hit, a trace of every hit, nothing when unset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = """
from convscope.crashpoints import crash_point
for i in range(5):
    crash_point("store.before-commit")
    crash_point("train.batch")
    print(i, flush=True)
"""


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONVSCOPE_CRASH")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=tmp_path,
        check=False,
    )


def test_without_the_variable_nothing_happens(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["0", "1", "2", "3", "4"]


def test_the_nth_hit_of_the_named_point_is_a_sigkill(tmp_path):
    done = _run(tmp_path, CONVSCOPE_CRASH_AT="train.batch:3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1"]  # killed at the third hit, before printing 2


def test_no_count_means_the_first_hit(tmp_path):
    done = _run(tmp_path, CONVSCOPE_CRASH_AT="store.before-commit")
    assert done.returncode == -signal.SIGKILL and done.stdout == ""


def test_the_trace_lists_every_hit_in_order(tmp_path):
    trace = tmp_path / "trace"
    done = _run(tmp_path, CONVSCOPE_CRASH_TRACE=str(trace))
    assert done.returncode == 0
    names = [line.split()[1] for line in trace.read_text().splitlines()]
    assert names == ["store.before-commit", "train.batch"] * 5


def test_a_point_that_does_not_exist_is_refused_at_once(tmp_path):
    for spec in ("train.bach:2", "train.batch:x", "train.batch:0"):
        done = _run(tmp_path, CONVSCOPE_CRASH_AT=spec)
        assert done.returncode == 2 and done.stdout == "", spec
        assert (
            done.stderr.startswith("convscope: error: CONVSCOPE_CRASH_AT=")
            and "train.batch" in done.stderr
        )
