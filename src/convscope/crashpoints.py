"""Named crash points: the kill soak stops a process at an exact instant, as SQLite's crash tests do.

With ``CONVSCOPE_CRASH_AT=NAME`` (or ``NAME:N``) in its environment, a process SIGKILLs
itself the first (or N-th) time it reaches :func:`crash_point` ``(NAME)``. Timed kills
rarely land on the few microseconds between a file's fsync and its rename or between a
transaction's last INSERT and its COMMIT; these points make those instants reliable.
Without the variables a crash point costs two environment lookups and does nothing.

The points (see ``benchmarks/soak_kill.py``):

- ``train.batch``: after a training batch's optimiser step.
- ``file.before-rename`` / ``file.after-rename``: a file of the run store (or any output
  written through :func:`convscope.files.atomic_write`) is complete and fsynced under
  its temporary name / has just been renamed to its final name.
- ``store.before-commit`` / ``store.after-commit``: inside a run-store write
  transaction after its last statement / just after its COMMIT.

With ``CONVSCOPE_CRASH_TRACE=FILE`` every point reached is appended to FILE as one line,
``<unix time> <name>``: the soak reads a clean run's trace to learn how often each point
comes per epoch and when training starts.

The hit counter is per process and only counts while the variable names a point: fault
injection is the one place a module-level counter is the simple, honest tool.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter

ENVIRONMENT_VARIABLE = "CONVSCOPE_CRASH_AT"
TRACE_VARIABLE = "CONVSCOPE_CRASH_TRACE"
POINTS = (
    "train.batch",
    "file.before-rename",
    "file.after-rename",
    "store.before-commit",
    "store.after-commit",
)
_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process if ``CONVSCOPE_CRASH_AT`` names ``name`` and this is the N-th hit."""
    trace = os.environ.get(TRACE_VARIABLE)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{time.time():.6f} {name}\n")
    spec = os.environ.get(ENVIRONMENT_VARIABLE)
    if not spec:
        return
    target, count = _parse(spec)
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] >= count:
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # Windows: no SIGKILL; end without cleanup all the same
            os._exit(137)
        os.kill(os.getpid(), kill)


def _parse(spec: str) -> tuple[str, int]:
    """``NAME[:N]`` as (name, N); a point that does not exist ends the process (status 2).

    A misspelt point would otherwise never fire, and a soak would pass without a kill.
    """
    target, _, count = spec.partition(":")
    if target in POINTS and (not count or (count.isdigit() and int(count) >= 1)):
        return target, int(count or 1)
    sys.stderr.write(
        f"convscope: error: {ENVIRONMENT_VARIABLE}={spec!r}: give NAME or NAME:N (N >= 1) "
        f"with NAME one of {', '.join(POINTS)}\n"
    )
    sys.stderr.flush()
    os._exit(2)
