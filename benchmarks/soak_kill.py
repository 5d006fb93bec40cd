"""Kill soak: SIGKILL a training run (and ``convscope embed``) again and again; lose nothing.

convscope promises that a killed training loses at most the epoch in progress. This
script trains a small zoo model (LeNet-5 on a Fashion-MNIST subset, recording a layer
and every batch's loss) and kills it with SIGKILL ``--kills`` times, resuming it with
``convscope train --resume`` after each kill until it finishes; the last kills hit
``convscope embed`` while it writes its cache. A kill lands either after a random delay
or at an exact named instant (``CONVSCOPE_CRASH_AT``, see ``convscope.crashpoints``):
after a batch, before and after a file's rename, before and after a transaction's
COMMIT. Then it checks that:

- every epoch is there once, and no epoch committed before a kill is gone after it;
- the metrics (all but seconds), every recorded array and every checkpoint's weights
  equal those of an uninterrupted run with the same seed, bit for bit, and so do the
  embedding cache's maps and scores;
- ``convscope runs check`` finds nothing but orphan files, ``--fix`` removes them and
  the store is then clean;
- a reader in another process (``open_store``, as the dashboard reads) that polls the
  store through the whole soak never saw an epoch without all its metrics and files,
  nor a recorded file missing or different from its checksum.

Run::

    .venv/bin/python benchmarks/soak_kill.py [--kills 20] [--seed 0] [--keep DIR]

It prints one line per kill, the figures, and last one JSON object; exit 1 when a goal
(epochs lost 0, corrupt runs 0, half-written epochs seen 0) is missed.
``tests/faults/test_soak_kill.py`` runs the quick version (one kill at each kind of
point) in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from convscope.crashpoints import ENVIRONMENT_VARIABLE, TRACE_VARIABLE

LAYER = "dense_1"
TIMER = "timer"
TRAIN_POINTS = (
    TIMER,
    "train.batch",
    "file.before-rename",
    "file.after-rename",
    "store.before-commit",
    "store.after-commit",
)
EMBED_POINTS = ("file.before-rename", "store.before-commit", "store.after-commit", TIMER)
# One kill at each kind of point: during a batch, during an epoch's file writes, inside
# the SQLite transaction, while ``convscope embed`` writes its cache. (phase, point, hit):
# None draws the hit; the third is the commit of epoch 2 in a resumed process (1 takes
# the run over, 2 commits epoch 1), so the last resume restores the optimiser's state.
QUICK_PLAN = (
    ("train", "train.batch", None),
    ("train", "file.before-rename", None),
    ("train", "store.before-commit", 3),
    ("embed", "store.before-commit", None),
)
IGNORED_METRICS = {"seconds"}  # wall time differs from run to run; everything else may not
FINAL_METRICS = {"test_loss", "test_acc"}  # added when the run finishes


@dataclass(frozen=True)
class SoakSettings:
    """What to train and how hard to kill it."""

    kills: int = 20
    embed_kills: int = 4
    epochs: int = 8
    subset: int = 800
    batch_size: int = 25
    seed: int = 0
    spread: float = 1.5  # a named kill's hit number is drawn from 1..spread x hits per epoch
    plan: tuple[tuple[str, str, int | None], ...] | None = None  # fixed kills, else random
    timeout_s: float = 300.0

    def train_args(self, store: Path) -> list[str]:
        return [
            "train",
            "lenet5",
            "--data",
            "fashion-mnist",
            "--subset",
            str(self.subset),
            "--epochs",
            str(self.epochs),
            "--batch-size",
            str(self.batch_size),
            "--record",
            LAYER,
            "--probe-per-class",
            "10",
            "--record-batch-loss",
            "--seed",
            "0",
            "--store",
            str(store),
            "--json",
        ]


QUICK = SoakSettings(
    kills=3, embed_kills=1, epochs=2, subset=400, batch_size=25, spread=1.0, plan=QUICK_PLAN
)


@dataclass
class Kill:
    """One attempt: where it was aimed and what happened."""

    phase: str
    point: str
    hit: int | None
    delay_s: float | None
    outcome: str  # killed | finished
    epochs_after: list[int]


@dataclass
class SoakReport:
    """The soak's figures; ``ok`` when every goal is met."""

    kills: list[Kill] = field(default_factory=list)
    epochs_lost: int = 0
    corrupt_runs: int = 0
    problems: list[str] = field(default_factory=list)
    orphans_left_by_kills: int = 0  # seen right after each kill (a resume removes its own)
    orphans_found: int = 0  # by `convscope runs check` at the end
    orphans_removed: int = 0
    reader: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every planned kill landed, and nothing was lost, changed or seen half-written."""
        return (
            bool(self.kills)
            and all(k.outcome == "killed" for k in self.kills)
            and self.epochs_lost == 0
            and self.corrupt_runs == 0
            and not self.problems
            and not self.reader.get("half_written")
            and not self.reader.get("errors")
        )

    def to_dict(self) -> dict[str, Any]:
        killed = [k for k in self.kills if k.outcome == "killed"]
        return {
            "kills": len(killed),
            "kills_by_point": dict(Counter(f"{k.phase}:{k.point}" for k in killed)),
            "epochs_lost": self.epochs_lost,
            "corrupt_runs": self.corrupt_runs,
            "orphans_left_by_kills": self.orphans_left_by_kills,
            "orphans_found": self.orphans_found,
            "orphans_removed": self.orphans_removed,
            "reader_reads": self.reader.get("reads", 0),
            "half_written_seen": len(self.reader.get("half_written", [])),
            "reader_errors": len(self.reader.get("errors", [])),
            "identical_to_uninterrupted": not self.problems,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
        }


# ------------------------------------------------------------------------- processes


def convscope(args: list[str]) -> list[str]:
    """The command line of ``convscope ARGS`` with this interpreter."""
    return [sys.executable, "-m", "convscope", *args]


def run_clean(args: list[str], timeout_s: float, trace: Path | None = None) -> tuple[str, float]:
    """Run ``convscope ARGS`` to the end, optionally tracing its crash points.

    Returns its stdout and the unix time it was started (the trace's times are unix times).
    """
    env = {k: v for k, v in os.environ.items() if k not in (ENVIRONMENT_VARIABLE, TRACE_VARIABLE)}
    if trace is not None:
        env[TRACE_VARIABLE] = str(trace)
    started = time.time()
    done = subprocess.run(
        convscope(args), capture_output=True, text=True, env=env, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"convscope {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout, started


def run_until_killed(
    args: list[str], point: str, hit: int | None, delay_s: float | None, timeout_s: float
) -> str:
    """Run ``convscope ARGS`` with a kill planned; 'killed' or 'finished'."""
    env = {k: v for k, v in os.environ.items() if k not in (ENVIRONMENT_VARIABLE, TRACE_VARIABLE)}
    if point != TIMER:
        env[ENVIRONMENT_VARIABLE] = f"{point}:{hit}"
    child = subprocess.Popen(
        convscope(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        if point == TIMER:
            try:
                child.wait(timeout=delay_s)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=timeout_s)
    except BaseException:
        child.kill()
        child.wait()
        raise
    if child.returncode == -signal.SIGKILL:
        return "killed"
    if child.returncode == 0:
        return "finished"
    raise RuntimeError(
        f"convscope {' '.join(args)} ended with {child.returncode}: {stderr.decode()[-2000:]}"
    )


# ------------------------------------------------------------------------- the trace


@dataclass(frozen=True)
class Trace:
    """How often each crash point comes per unit of work in a clean process, and when.

    For training a unit is an epoch, counted between the first and the last training
    batch (so the start-up's and the finish's writes do not inflate it); for
    ``convscope embed`` the whole process is one unit.
    """

    total: Counter[str]
    per_unit: dict[str, float]
    startup_s: float  # process start to the first training batch (embed: first point)
    unit_s: float  # seconds per unit of work

    @classmethod
    def read(cls, path: Path, started: float, units: int) -> Trace:
        lines = [line.split() for line in path.read_text().splitlines()]
        times = [float(t) for t, _ in lines]
        names = [n for _, n in lines]
        if "train.batch" in names:
            first = names.index("train.batch")
            last = len(names) - 1 - names[::-1].index("train.batch")
            window = Counter(names[first : last + 1])
            per_unit = {
                n: c / (units if n == "train.batch" else max(1, units - 1))
                for n, c in window.items()
            }
        else:
            first, last = 0, len(names) - 1
            per_unit = {n: c / units for n, c in Counter(names).items()}
        return cls(
            Counter(names), per_unit, times[first] - started, (times[last] - times[first]) / units
        )


def draw_kill(
    rng: random.Random, point: str, trace: Trace, spread: float, *, takeover: bool
) -> tuple[int | None, float | None]:
    """(hit number, delay): a named point's N-th hit, or a timer's delay in seconds.

    A kill is drawn within ``spread`` units of work from the process's start: above 1 it
    may land after some progress. With ``takeover`` (a resumed run first takes itself
    over in one transaction) a store point's count gets one more.
    """
    if point == TIMER:
        return None, rng.uniform(0.5 * trace.startup_s, trace.startup_s + spread * trace.unit_s)
    top = max(1, math.floor(spread * trace.per_unit.get(point, 1)))
    top += 1 if takeover and point.startswith("store.") else 0
    return rng.randint(1, min(top, max(1, trace.total[point] - 1))), None


# ------------------------------------------------------------------------- the store


def read_store(root: Path) -> dict[str, Any]:
    """One run's epochs, metrics, artifacts and checkpoints' weights, for comparison."""
    from convscope.models.checkpoint import read_torch_file
    from convscope.store import open_store

    with open_store(root, create=False) as store:
        (run,) = store.runs()
        epochs = [e.epoch for e in store.epochs(run.id)]
        metrics = store.metrics(run.id)
        artifacts = store.artifacts(run.id)
        weights = {
            epoch: read_torch_file(path)["state_dict"]
            for epoch, path in store.checkpoints(run.id).items()
        }
        return {
            "id": run.id,
            "status": run.status,
            "epochs": epochs,
            "metrics": metrics,
            "arrays": {
                (a.epoch, a.kind, a.name): a.sha256 for a in artifacts if a.kind != "checkpoint"
            },
            "weights": weights,
        }


def differences(reference: dict[str, Any], soaked: dict[str, Any]) -> list[str]:
    """Where the soaked run differs from the uninterrupted one (empty: bit for bit equal)."""
    import torch

    found = []
    if not reference["arrays"] or not reference["weights"]:  # never compare two empty runs
        found.append("the uninterrupted run recorded no arrays or checkpoints")
    if soaked["status"] != "finished":
        found.append(f"the soaked run is {soaked['status']}, not finished")
    if soaked["epochs"] != reference["epochs"]:
        found.append(f"epochs {soaked['epochs']} != {reference['epochs']}")
    for name in sorted(set(reference["metrics"]) | set(soaked["metrics"])):
        if name in IGNORED_METRICS:
            continue
        a, b = reference["metrics"].get(name), soaked["metrics"].get(name)
        if a is None or b is None or not np.array_equal(a, b, equal_nan=True):
            found.append(f"metric {name}: {b} != {a}")
    ref_arrays, soak_arrays = reference["arrays"], soaked["arrays"]
    for key in sorted(set(ref_arrays) | set(soak_arrays), key=str):
        if ref_arrays.get(key) != soak_arrays.get(key):
            found.append(f"array {key}: differs or missing")
    for epoch in sorted(set(reference["weights"]) | set(soaked["weights"])):
        a, b = reference["weights"].get(epoch), soaked["weights"].get(epoch)
        if a is None or b is None:
            found.append(f"checkpoint of epoch {epoch} missing")
            continue
        for name in sorted(set(a) | set(b)):
            if name not in a or name not in b or not torch.equal(a[name], b[name]):
                found.append(f"weights {name} of epoch {epoch} differ or are missing")
    return found


def check_cli(store: Path, *extra: str) -> dict[str, Any]:
    """``convscope runs check --json`` of ``store``."""
    done = subprocess.run(
        convscope(["runs", "check", "--store", str(store), "--json", *extra]),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"runs check failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout)


def epochs_of(store: Path) -> list[int]:
    """The committed epochs of the store's one run ([] before it exists)."""
    from convscope.store import open_store

    if not (store / "convscope.db").is_file():
        return []
    with open_store(store, create=False) as opened:
        runs = opened.runs()
        return [e.epoch for e in opened.epochs(runs[0].id)] if runs else []


def resume_args(store: Path) -> list[str]:
    """``convscope train --resume`` of the store's one run."""
    return ["train", "--resume", run_id_of(store), "--store", str(store), "--json"]


def orphans_in(store: Path) -> set[str]:
    """Files under the store's runs/ that no row references (what a kill left behind)."""
    from convscope.store import open_store

    if not (store / "convscope.db").is_file():
        return set()
    with open_store(store, create=False) as opened:
        return set(opened.check(verify_checksums=False).orphans)


def cached_maps(store: Path) -> int:
    """How many maps and score arrays ``convscope embed`` has cached in the store."""
    from convscope.store import open_store

    with open_store(store, create=False) as opened:
        (run,) = opened.runs()
        kinds = ("embedding", "separation")
        return sum(1 for a in opened.artifacts(run.id) if a.kind in kinds)


def status_of(store: Path) -> str | None:
    """The status of the store's one run, or None before it is created."""
    from convscope.store import open_store

    if not (store / "convscope.db").is_file():
        return None
    with open_store(store, create=False) as opened:
        runs = opened.runs()
        return runs[0].status if runs else None


def run_id_of(store: Path) -> str | None:
    """The id of the store's one run, or None before it is created."""
    from convscope.store import open_store

    if not (store / "convscope.db").is_file():
        return None
    with open_store(store, create=False) as opened:
        runs = opened.runs()
        return runs[0].id if runs else None


# ------------------------------------------------------------------------- the reader


def expected_layout(reference: Path) -> dict[str, Any]:
    """Per epoch, the (kind, name) files and the metric names a complete epoch has."""
    from convscope.store import open_store

    with open_store(reference, create=False) as store:
        (run,) = store.runs()
        files: dict[int, list[list[str]]] = {}
        for a in store.artifacts(run.id):
            if a.epoch is not None and a.kind not in ("embedding", "separation"):
                files.setdefault(a.epoch, []).append([a.kind, a.name])
        metrics = store.metrics(run.id)
        names: dict[int, list[str]] = {}
        for row, epoch in enumerate(metrics["epoch"].tolist()):
            names[epoch] = [
                name
                for name, values in metrics.items()
                if name != "epoch" and name not in FINAL_METRICS and not np.isnan(values[row])
            ]
        return {"files": files, "metrics": names}


@dataclass
class ReaderState:
    """What the reader process has seen so far."""

    expected_files: dict[int, set[tuple[str, str]]]
    expected_metrics: dict[int, set[str]]
    reads: int = 0
    half_written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seen: dict[int, dict[str, float]] = field(default_factory=dict)
    hashed: set[int] = field(default_factory=set)  # artifact ids whose checksum was checked


def read_once(store: Any, state: ReaderState) -> None:
    """One read of every run, as a dashboard request would: is each epoch seen complete?

    Files are immutable once referenced, so each is hashed the first time it is seen and
    only its size is checked after that.
    """
    from convscope.store.files import sha256_file

    for run in store.runs():
        epochs = [e.epoch for e in store.epochs(run.id)]
        metrics = store.metrics(run.id)
        present: dict[int | None, set[tuple[str, str]]] = {}
        for a in store.artifacts(run.id):
            present.setdefault(a.epoch, set()).add((a.kind, a.name))
            path = store.root / a.path
            if not path.is_file() or path.stat().st_size != a.bytes:
                state.half_written.append(f"read {state.reads}: {a.path} missing or short")
            elif a.id not in state.hashed:
                if sha256_file(path)[0] != a.sha256:
                    state.half_written.append(f"read {state.reads}: {a.path} differs")
                state.hashed.add(a.id)
        rows = {e: i for i, e in enumerate(metrics["epoch"].tolist())}
        for epoch in epochs:
            wanted = state.expected_metrics.get(epoch, set())
            values = {n: float(metrics[n][rows[epoch]]) for n in wanted if n in metrics}
            absent = sorted(n for n in wanted if math.isnan(values.get(n, math.nan)))
            missing = sorted(state.expected_files.get(epoch, set()) - present.get(epoch, set()))
            if missing or absent:
                state.half_written.append(
                    f"read {state.reads}: epoch {epoch} without files {missing} metrics {absent}"
                )
            state.seen.setdefault(
                epoch, {k: v for k, v in values.items() if k not in IGNORED_METRICS}
            )
    state.reads += 1


def reader(store_dir: Path, layout_file: Path, stop_file: Path, out_file: Path) -> None:
    """Poll the store with a new connection per read until ``stop_file`` appears."""
    from convscope.store import open_store

    layout = json.loads(layout_file.read_text())
    state = ReaderState(
        {int(e): {tuple(k) for k in keys} for e, keys in layout["files"].items()},
        {int(e): set(names) for e, names in layout["metrics"].items()},
    )
    last = False
    while not last:
        last = stop_file.exists()
        if (store_dir / "convscope.db").is_file():
            try:
                with open_store(store_dir, create=False) as store:
                    read_once(store, state)
            except Exception as exc:  # a failed read is a finding, not the reader's end
                state.errors.append(f"read {state.reads}: {type(exc).__name__}: {exc}")
        time.sleep(0.03)
    found = {
        "reads": state.reads,
        "half_written": state.half_written[:50],
        "errors": state.errors[:50],
        "seen": state.seen,
    }
    out_file.write_text(json.dumps(found))


def start_reader(store: Path, work: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start the reader process; returns it, its stop file and its output file."""
    stop, out = work / "reader.stop", work / "reader.json"
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--reader",
            str(store),
            str(work / "layout.json"),
            str(stop),
            str(out),
        ]
    )
    return process, stop, out


def stop_reader(process: subprocess.Popen[bytes], stop: Path, out: Path) -> dict[str, Any]:
    """Ask the reader for one last read and its findings."""
    stop.touch()
    process.wait(timeout=120)
    if process.returncode != 0 or not out.is_file():
        return {"errors": [f"the reader process ended with {process.returncode}"]}
    return json.loads(out.read_text())


# ------------------------------------------------------------------------- the soak


def soak(settings: SoakSettings, work: Path, log: Callable[[str], None] = print) -> SoakReport:
    """Run the reference, the soak and the checks in ``work``; returns the figures."""
    started = time.time()
    report = SoakReport()
    rng = random.Random(settings.seed)
    ref_store, soak_store = work / "reference", work / "soak"
    embed_args = ["--layer", LAYER, "--method", "pca", "--json"]

    log(f"uninterrupted run: lenet5, {settings.epochs} epochs of {settings.subset} images")
    train_trace = work / "train.trace"
    _, t0 = run_clean(settings.train_args(ref_store), settings.timeout_s, train_trace)
    trace_train = Trace.read(train_trace, t0, settings.epochs)
    if epochs_of(ref_store) != list(range(settings.epochs + 1)):
        raise RuntimeError(f"the uninterrupted run has epochs {epochs_of(ref_store)}")
    ref_id = run_id_of(ref_store)
    embed_trace = work / "embed.trace"
    _, t0 = run_clean(
        ["embed", ref_id, "--store", str(ref_store), *embed_args], settings.timeout_s, embed_trace
    )
    trace_embed = Trace.read(embed_trace, t0, 1)
    (work / "layout.json").write_text(json.dumps(expected_layout(ref_store)))

    if settings.plan is not None:
        plan = list(settings.plan)
    else:
        train_kills = settings.kills - settings.embed_kills
        plan = [("train", TRAIN_POINTS[i % len(TRAIN_POINTS)], None) for i in range(train_kills)]
        rng.shuffle(plan)
        plan += [
            ("embed", EMBED_POINTS[i % len(EMBED_POINTS)], None)
            for i in range(settings.embed_kills)
        ]

    process, stop, out = start_reader(soak_store, work)
    try:
        known: set[int] = set()
        orphans: set[str] = set()  # distinct files the kills left behind
        finished = False
        for number, (phase, point, fixed_hit) in enumerate(plan, start=1):
            if phase == "train" and finished:  # the run ended first: kill embed instead
                phase, point, fixed_hit = "embed", EMBED_POINTS[number % len(EMBED_POINTS)], None
            if phase == "train":
                run_id = run_id_of(soak_store)
                args = (
                    settings.train_args(soak_store) if run_id is None else resume_args(soak_store)
                )
                hit, delay = draw_kill(
                    rng, point, trace_train, settings.spread, takeover=run_id is not None
                )
            else:
                if not finished:
                    run_clean(resume_args(soak_store), settings.timeout_s)
                    finished = True
                args = ["embed", run_id_of(soak_store), "--store", str(soak_store), *embed_args]
                # spread what is left of the cache's writes over the embed kills still to come
                left = 1 - cached_maps(soak_store) / cached_maps(ref_store)
                kills_left = sum(1 for p in plan[number - 1 :] if p[0] == "embed")
                hit, delay = draw_kill(
                    rng, point, trace_embed, left / max(1, kills_left), takeover=False
                )
            hit = fixed_hit or hit
            outcome = run_until_killed(args, point, hit, delay, settings.timeout_s)
            # a kill can also land after the run's last commit, before the process ends
            finished = finished or (phase == "train" and status_of(soak_store) == "finished")
            now = set(epochs_of(soak_store))
            orphans |= orphans_in(soak_store)
            report.epochs_lost += len(known - now)
            known |= now
            aim = f"{point}:{hit}" if hit is not None else f"{point} {delay:.2f} s"
            report.kills.append(Kill(phase, point, hit, delay, outcome, sorted(now)))
            log(
                f"kill {number:2d}/{len(plan)}  {phase:5s}  {aim:26s} {outcome:8s} "
                f"epochs committed: {format_epochs(sorted(now))}"
            )
        if not finished:
            run_clean(resume_args(soak_store), settings.timeout_s)
        run_clean(
            ["embed", run_id_of(soak_store), "--store", str(soak_store), *embed_args],
            settings.timeout_s,
        )
        report.orphans_left_by_kills = len(orphans)
    finally:
        report.reader = stop_reader(process, stop, out)

    before = check_cli(soak_store)
    others = [p for p in before["problems"] if not p.startswith("orphan file:")]
    report.orphans_found = len(before["problems"]) - len(others)
    check_cli(soak_store, "--fix")  # its JSON is only {"ok", "problems"}: count what is left
    after = check_cli(soak_store)
    left = [p for p in after["problems"] if p.startswith("orphan file:")]
    report.orphans_removed = report.orphans_found - len(left)
    report.problems += [f"runs check: {p}" for p in others + after["problems"]]

    reference, soaked = read_store(ref_store), read_store(soak_store)
    report.problems += differences(reference, soaked)
    for epoch, values in report.reader.get("seen", {}).items():
        row = soaked["epochs"].index(int(epoch)) if int(epoch) in soaked["epochs"] else None
        if row is None:
            report.epochs_lost += 1
            continue
        for name, value in values.items():
            final = float(soaked["metrics"][name][row])
            if not (value == final or (math.isnan(value) and math.isnan(final))):
                report.problems.append(
                    f"epoch {epoch} {name} was {value} when read, {final} at the end"
                )
    report.corrupt_runs = 1 if report.problems else 0
    report.seconds = time.time() - started
    return report


def format_epochs(epochs: list[int]) -> str:
    """0-3 for [0, 1, 2, 3]; 'none' for []."""
    if not epochs:
        return "none"
    return (
        f"{epochs[0]}-{epochs[-1]}"
        if epochs == list(range(epochs[0], epochs[-1] + 1))
        else str(epochs)
    )


def print_figures(report: SoakReport) -> None:
    """The figures a user reads, then one JSON object as the last line."""
    figures = report.to_dict()
    points = ", ".join(f"{k} {v}" for k, v in sorted(figures["kills_by_point"].items()))
    print(f"kills done      {figures['kills']}  ({points})")
    print(f"epochs lost     {figures['epochs_lost']}  (goal 0)")
    print(f"corrupt runs    {figures['corrupt_runs']}  (goal 0)")
    print(
        f"orphans         {figures['orphans_left_by_kills']} left by the kills (a resume removes "
        f"its run's); {figures['orphans_found']} found by `runs check` at the end, "
        f"{figures['orphans_removed']} removed by its --fix"
    )
    print(
        f"reader          {figures['reader_reads']} reads from another process; half-written "
        f"epochs seen {figures['half_written_seen']} (goal 0), errors {figures['reader_errors']}"
    )
    same = "equal to the uninterrupted run" if not report.problems else "DIFFERENT"
    print(f"bit for bit     {same} (metrics, arrays, weights, cached maps)")
    for problem in report.problems[:20]:
        print(f"  problem: {problem}")
    reader_findings = report.reader.get("half_written", []) + report.reader.get("errors", [])
    for finding in reader_findings[:20]:
        print(f"  reader: {finding}")
    print(f"seconds         {figures['seconds']}")
    print(json.dumps(figures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs in all (20)")
    parser.add_argument("--embed-kills", type=int, default=4, help="of them in embed (4)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the soaked run (8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill plan (0)")
    parser.add_argument("--quick", action="store_true", help="one kill at each kind of point")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--reader", nargs=4, metavar="X", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:  # the reader process the soak starts
        reader(*(Path(p) for p in args.reader))
        return 0
    if args.epochs < 2:  # one epoch has no epoch commit between batches to count kills by
        parser.error("--epochs must be at least 2")
    if args.quick:
        settings = replace(QUICK, seed=args.seed)
    else:
        settings = SoakSettings(
            kills=args.kills, embed_kills=args.embed_kills, epochs=args.epochs, seed=args.seed
        )
    work = args.keep or Path(tempfile.mkdtemp(prefix="convscope-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = soak(settings, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print_figures(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
