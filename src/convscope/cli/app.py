"""The ``convscope`` command: argument parsing, dispatch and the error contract.

A user's mistake (a :class:`~convscope.errors.ConvscopeError` or a bad argument)
prints one line on stderr starting ``convscope: error:`` and exits with status 2;
``CONVSCOPE_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich_argparse import RawDescriptionRichHelpFormatter

from convscope import __version__
from convscope.errors import ConvscopeError

DESCRIPTION = """\
See inside convolutional networks: kernels, feature maps, the conv/pool arithmetic,
the input a class wants, where an image decided the answer, and how the hidden
layer of several architectures separates the classes epoch by epoch.

examples:
  convscope models                          list the zoo
  convscope summary residual                Keras-style summary of a model
  convscope train lenet --data mnist --epochs 3 --save lenet.ckpt
  convscope kernels lenet.ckpt --layer conv2d_1 --out kernels.png
  convscope features lenet.ckpt --image mnist:test:12 --layers conv2d_1,max_pooling2d_1
  convscope maximize lenet.ckpt --class all --out classes.png
  convscope study --epochs 10 && convscope report architectures --out report.html
  convscope COMMAND --help                  more on each command

Set CONVSCOPE_HOME to move the cache (default ~/.cache/convscope) and
CONVSCOPE_DEBUG=1 to see tracebacks."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line, as the CLI contract asks."""

    def error(self, message: str) -> None:  # type: ignore[override]
        choice = re.match(
            r"argument (?P<arg>.+?): invalid choice: '(?P<got>.*)' \(choose from (?P<all>.*)\)$",
            message,
        )
        if choice:  # name the close ones first, not only the whole list
            from convscope.naming import close_matches

            known = re.findall(r"'([^']*)'", choice["all"])
            hint = close_matches(choice["got"], known)
            message = f"argument {choice['arg']}: invalid choice {choice['got']!r}{hint} (choose from {', '.join(known)})"
        sys.stderr.write(f"convscope: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


class HelpFormatter(RawDescriptionRichHelpFormatter):
    """Coloured help that prints its text literally: ``[...]`` and ``:ID:`` are not markup."""

    help_markup = False
    text_markup = False


def build_parser() -> ArgumentParser:
    """The full parser with every subcommand."""
    from convscope.cli import data_cmds, model_cmds, runs_cmds, train_cmds

    parser = ArgumentParser(
        prog="convscope", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    data_cmds.register(commands)
    model_cmds.register(commands)
    train_cmds.register(commands)
    runs_cmds.register(commands)
    from convscope.cli import (
        attribute_cmds,
        embed_cmds,
        examples_cmds,
        export_cmds,
        feature_cmds,
        kernel_cmds,
        maximize_cmds,
        report_cmds,
        serve_cmds,
        study_cmds,
    )

    study_cmds.register(commands)
    kernel_cmds.register(commands)
    feature_cmds.register(commands)
    maximize_cmds.register(commands)
    attribute_cmds.register(commands)
    examples_cmds.register(commands)
    embed_cmds.register(commands)
    report_cmds.register(commands)
    export_cmds.register(commands)
    serve_cmds.register(commands)
    return parser


def add_command(
    commands: argparse._SubParsersAction, name: str, summary: str, examples: str
) -> ArgumentParser:
    """A subcommand with a one-line summary and an examples section in its help."""
    return commands.add_parser(
        name,
        help=summary.split("\n\n")[0],
        description=f"{summary}\n\nexamples:\n{examples}",
        formatter_class=HelpFormatter,
    )


NEGATIVE_VALUE = re.compile(r"-\d[\d.]*(,-?\d[\d.]*)*")
"""A value such as ``-1,3`` or ``-2``, which argparse would take for an option."""


def attach_negative_values(argv: list[str]) -> list[str]:
    """``--at -1,3`` -> ``--at=-1,3``, so a negative coordinate reaches its option."""
    out: list[str] = []
    for token in argv:
        previous = out[-1] if out else ""
        if NEGATIVE_VALUE.fullmatch(token) and previous.startswith("--") and "=" not in previous:
            out[-1] = f"{previous}={token}"
        else:
            out.append(token)
    return out


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The parser of the (sub)command ``args`` were parsed for: ``convscope runs show``'s."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return command_parser(chosen, args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    import warnings

    parser = build_parser()
    argv = attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    args, extras = parser.parse_known_args(argv)
    if extras:  # said by the command's own parser, so the error points to its --help
        command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    with _terminate_as_interrupt(), warnings.catch_warnings():  # all restored afterwards
        # Captum's notices about the hooks it sets, printed on every attribution, say
        # nothing to the user (the library leaves them alone); others get one line.
        warnings.filterwarnings("ignore", message="Setting (forward, )?backward hooks")
        warnings.showwarning = _warning_line
        return _run(args)


def _warning_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, *_a: object
) -> None:
    """convscope's own warnings as one line on stderr, and those of the user's own code
    (a ``file.py:factory``); a dependency's only with ``CONVSCOPE_DEBUG=1``.

    The user asked convscope, not torch or PIL: their notices (deprecations, pickle
    protocols, thread settings) are noise beside the answer or the one error line.
    """
    from convscope.errors import ConvscopeWarning

    if issubclass(category, ConvscopeWarning) or _users_code(filename):
        sys.stderr.write(f"convscope: warning: {' '.join(str(message).split())}\n")
    elif os.environ.get("CONVSCOPE_DEBUG") == "1":
        sys.stderr.write(f"{filename}:{lineno}: {category.__name__}: {message}\n")


def _users_code(filename: str) -> bool:
    """Whether ``filename`` is the user's own code: not convscope, an installed package or
    Python's standard library."""
    import sysconfig

    path = Path(filename).resolve()
    if {"site-packages", "dist-packages"} & set(path.parts) or not path.is_file():
        return False
    own = Path(__file__).resolve().parents[1]  # the convscope package
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    return not (path.is_relative_to(own) or path.is_relative_to(stdlib))


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a job scheduler), raised where the work is."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into an exception for the duration of a command, like Ctrl-C.

    Then the ``finally`` blocks and error handlers run: a killed ``features --npy``
    removes its partial files as an interrupted one does. The previous handler is
    restored afterwards (the CLI also runs in-process, from tests).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(_signum: int, _frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    """The command's handler, with the error contract around it."""
    try:
        return int(args.handler(args) or 0)
    except ConvscopeError as exc:
        if os.environ.get("CONVSCOPE_DEBUG") == "1":
            raise
        message = " ".join(str(exc).split())
        sys.stderr.write(f"convscope: error: {message}\n")
        return 2
    except Terminated:
        sys.stderr.write("convscope: terminated\n")
        return 143
    except KeyboardInterrupt:
        sys.stderr.write("convscope: interrupted\n")
        return 130
    except BrokenPipeError:  # `convscope ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
