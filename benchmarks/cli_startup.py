"""How fast the ``convscope`` command answers, against ``python -c "import torch"`` in one run.

Every timing is the wall time of a fresh ``python -m convscope ...`` process (the
interpreter start included, as a new user sees it), best of ``--repeats``, with the
commands interleaved so drifts in machine load hit all alike. The baseline,
``python -c "import torch"``, is measured the same way in the same run.

1. ``version_ratio``, ``help_ratio``: ``--version`` and ``--help`` over the baseline.
   Target: at most 0.5.
2. ``command_help_ratio``: the slowest ``COMMAND --help`` (every command and
   subcommand) over the baseline. Target: at most 0.5.
3. ``runs_list_ratio``, ``data_list_ratio``, ``models_ratio``: the listings (a store
   with one run, a fresh cache). ``models`` builds every zoo model to count its
   parameters, so it needs torch; the others do not.
4. ``*_rss_mb``: the peak memory of the ``--version`` process and of the baseline.

The last line of stdout is one JSON object.

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from convscope.cli.app import build_parser

BASELINE = ("-c", "import torch")


def timed(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one fresh ``python ARGS`` process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"python {' '.join(args)} exited with status {child.returncode}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def command_helps() -> list[tuple[str, ...]]:
    """``COMMAND --help`` for every command and subcommand the parser has."""
    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append((*prefix, name, "--help"))
                    walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    args = parser.parse_args()
    from convscope.store import open_store

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = {**os.environ, "CONVSCOPE_HOME": str(root / "home")}
        env.pop("CONVSCOPE_DATA_DIR", None)
        store = root / "store"
        with open_store(store) as runs:
            runs.create_run(name="bench", model="lenet", dataset="mnist", config={})
        cli = ("-m", "convscope")
        cases: dict[str, tuple[str, ...]] = {
            "import_torch": BASELINE,
            "version": (*cli, "--version"),
            "help": (*cli, "--help"),
            "runs_list": (*cli, "runs", "list", "--store", str(store)),
            "data_list": (*cli, "data", "list"),
            "models": (*cli, "models"),
        }
        helps = {" ".join(h): (*cli, *h) for h in command_helps()}  # "runs list --help"
        best: dict[str, float] = {}
        rss: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, case in [*cases.items(), *helps.items()]:
                seconds, peak = timed(case, env, root)
                best[name] = min(best.get(name, seconds), seconds)
                rss[name] = min(rss.get(name, peak), peak)
    torch_s = best["import_torch"]
    slowest = max(helps, key=lambda name: best[name])
    print(f'python -c "import torch": {torch_s:.3f} s, {rss["import_torch"]:.0f} MB')
    for name in ("version", "help", "runs_list", "data_list", "models"):
        print(f"{name}: {best[name]:.3f} s ({best[name] / torch_s:.2f}x import torch)")
    print(
        f"COMMAND --help ({len(helps)} commands): slowest `{slowest}` {best[slowest]:.3f} s "
        f"({best[slowest] / torch_s:.2f}x), fastest {min(best[h] for h in helps):.3f} s"
    )
    print(f"--version peak memory {rss['version']:.0f} MB")
    print(
        json.dumps(
            {
                "repeats": args.repeats,
                "import_torch_s": round(torch_s, 3),
                "version_s": round(best["version"], 3),
                "help_s": round(best["help"], 3),
                "command_help_max_s": round(best[slowest], 3),
                "command_help_slowest": slowest,
                "runs_list_s": round(best["runs_list"], 3),
                "data_list_s": round(best["data_list"], 3),
                "models_s": round(best["models"], 3),
                "version_ratio": round(best["version"] / torch_s, 4),
                "help_ratio": round(best["help"] / torch_s, 4),
                "command_help_ratio": round(best[slowest] / torch_s, 4),
                "runs_list_ratio": round(best["runs_list"] / torch_s, 4),
                "data_list_ratio": round(best["data_list"] / torch_s, 4),
                "models_ratio": round(best["models"] / torch_s, 4),
                "version_rss_mb": round(rss["version"], 1),
                "import_torch_rss_mb": round(rss["import_torch"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
