"""Every command's --help teaches: it has examples, each first example parses, and the
first examples that need no dataset or run actually work."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from convscope.cli.app import attach_negative_values, build_parser
from tests.cli import assert_user_error, run


def _commands() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[(*prefix, name)] = sub
                    walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


def _examples(parser: argparse.ArgumentParser) -> list[list[str]]:
    text = (parser.description or "").split("examples:\n", 1)
    joined = text[1].replace("\\\n", " ") if len(text) == 2 else ""  # continued lines
    examples = []
    for line in joined.splitlines():
        command = re.split(r"\s{2,}[(#]", line.strip())[0]  # drop a trailing note
        if command.startswith("convscope "):
            examples.append(shlex.split(command)[1:])
    return examples


COMMANDS = _commands()


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_help_has_examples_that_parse(
    command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    examples = _examples(COMMANDS[command])
    assert examples, f"`convscope {' '.join(command)} --help` shows no example"
    for argv in examples:
        for token in argv:  # output folders an example names (demo-out/...) exist for it
            if "/" in token and ":" not in token and not token.startswith("-"):
                (tmp_path / token).parent.mkdir(parents=True, exist_ok=True)
        assert tuple(argv[: len(command)]) == command, argv
        args = build_parser().parse_args(argv)  # a stale option would exit 2 here
        assert getattr(args, "handler", None) is not None or len(command) == 1, argv


# First examples that need no dataset, run or network, and run in a few seconds.
RUNNABLE = [("models",), ("summary",), ("layers",), ("kernels",), ("diagram",), ("examples",), ("data", "list")]


@pytest.mark.parametrize("command", RUNNABLE, ids=" ".join)
def test_first_example_works(
    command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _examples(COMMANDS[command])[0]
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    written = [argv[i + 1] for i, a in enumerate(argv) if a == "--out"]
    assert out.strip() or written
    for name in written:
        assert (tmp_path / name).stat().st_size > 0


def test_an_unknown_option_points_to_the_commands_own_help(capsys) -> None:
    assert_user_error(
        run(capsys, "kernels", "lenet", "--layer", "conv2d_1", "--bogus"),
        "unrecognized arguments: --bogus",
        "see `convscope kernels --help`",
    )
    assert_user_error(run(capsys, "runs", "list", "--bogus"), "`convscope runs list --help`")


def test_negative_values_reach_their_option(capsys) -> None:
    # argparse alone reads "-1,3" as an option; the CLI hands it to --at, which refuses it
    assert_user_error(
        run(capsys, "explain", "lenet5", "--layer", "conv2d_1", "--image", "x.png", "--at", "-1,3"),
        "argument --at: ROW and COL start at 0, got '-1,3'",
    )
    assert attach_negative_values(["--at", "-1,3", "-h"]) == ["--at=-1,3", "-h"]
    assert attach_negative_values(["--json", "--at", "2,3"]) == ["--json", "--at", "2,3"]


def test_a_mistyped_choice_suggests_the_close_one(capsys) -> None:
    assert_user_error(run(capsys, "featurs"), "invalid choice 'featurs'; did you mean features?")
    assert_user_error(
        run(capsys, "kernels", "lenet", "--layer", "conv2d_1", "--norm", "lyer"),
        "did you mean layer?",
        "(choose from per-kernel, layer, diverging)",
    )
