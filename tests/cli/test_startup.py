"""The CLI answers at once: help and listings leave the heavy libraries unimported.

Each check runs in a fresh interpreter, since the test process has long imported
everything. ``benchmarks/cli_startup.py`` measures the times these imports would cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from convscope import __version__
from convscope.cli.app import build_parser

HEAVY = ("torch", "sklearn", "matplotlib", "umap", "captum")
"""What ``--help``, ``--version`` and ``COMMAND --help`` must not import."""

LISTING_FREE = ("sklearn", "umap", "matplotlib")
"""What ``runs list``, ``data list`` and ``models`` must not import (``models`` needs torch)."""

ENTRY_POINT = """\
import atexit, json, runpy, sys
modules = json.loads(sys.argv[1])
def report():
    loaded = [m for m in modules if m in sys.modules]
    sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
atexit.register(report)
sys.argv = ["convscope", *sys.argv[2:]]
runpy.run_module("convscope", run_name="__main__", alter_sys=True)
"""
"""``python -m convscope ARGS``, then which of the modules given in argv[1] it imported."""

EACH_IN_TURN = """\
import contextlib, io, json, sys
from convscope.cli.app import main
heavy = json.loads(sys.argv[1])
results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
    loaded = [m for m in heavy if m in sys.modules]
    results.append({"argv": argv, "status": status, "loaded": loaded, "stderr": err.getvalue()})
print(json.dumps(results))
"""
"""Run each argv of argv[2] in turn in one interpreter; what was imported after each."""


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CONVSCOPE_HOME": str(tmp_path / "home"), "CONVSCOPE_DEBUG": ""}


def _python(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c SCRIPT ARGS`` in a fresh interpreter, in ``tmp_path``."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        check=False,
        timeout=300,
    )


def run_module(tmp_path: Path, modules: tuple[str, ...], *argv: str) -> tuple[int, str, list[str]]:
    """``python -m convscope ARGV`` in a fresh interpreter: status, stdout, modules it imported."""
    done = _python(tmp_path, ENTRY_POINT, json.dumps(modules), *argv)
    marker = done.stderr.rpartition("\nLOADED ")[2]
    assert marker != done.stderr, done.stderr
    return done.returncode, done.stdout, json.loads(marker)


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command and nested subcommand of the parser, e.g. ``["runs", "list"]``."""
    found: list[list[str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append([*prefix, name])
                found.extend(subcommands(sub, (*prefix, name)))
    return found


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    status, out, loaded = run_module(tmp_path, HEAVY, "--version")
    assert status == 0 and out.strip() == f"convscope {__version__}"
    assert loaded == [], f"convscope --version imported {loaded}"


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    status, out, loaded = run_module(tmp_path, HEAVY, "--help")
    assert status == 0 and "COMMAND" in out
    assert loaded == [], f"convscope --help imported {loaded}"
    status, out, loaded = run_module(tmp_path, HEAVY)  # no command: the help too
    assert status == 0 and "COMMAND" in out and loaded == []


def test_every_command_help_imports_nothing_heavy(tmp_path: Path) -> None:
    commands = subcommands(build_parser())
    assert ["runs", "list"] in commands and len(commands) > 20
    argvs = [[*command, "--help"] for command in commands]
    done = _python(tmp_path, EACH_IN_TURN, json.dumps(HEAVY), json.dumps(argvs))
    assert done.returncode == 0, done.stderr
    for result in json.loads(done.stdout):  # modules accumulate: the first offender shows
        command = " ".join(result["argv"])
        assert result["status"] == 0, f"convscope {command}: {result['stderr']}"
        assert result["loaded"] == [], f"convscope {command} imported {result['loaded']}"


def test_listings_leave_learning_and_plotting_libraries_unimported(tmp_path: Path) -> None:
    from convscope.store import open_store

    store = tmp_path / "store"
    with open_store(store) as runs:
        runs.create_run(name="startup", model="lenet", dataset="mnist", config={})
    for argv in (("runs", "list", "--store", str(store)), ("data", "list"), ("models",)):
        status, out, loaded = run_module(tmp_path, LISTING_FREE, *argv)
        command = " ".join(argv)
        assert status == 0 and out.strip(), f"convscope {command} failed"
        assert loaded == [], f"convscope {command} imported {loaded}"
