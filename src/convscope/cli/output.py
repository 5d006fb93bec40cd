"""How the CLI prints: JSON documents on stdout, rich output for people, progress on stderr."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store DIR``, accepted by every command that reads or writes runs."""
    from convscope.paths import DEFAULT_STORE_DIR

    parser.add_argument(
        "--store",
        type=Path,
        default=Path(DEFAULT_STORE_DIR),
        metavar="DIR",
        help=f"the run store directory (default ./{DEFAULT_STORE_DIR})",
    )


def print_json(data: Any) -> None:
    """One strict JSON document on stdout, nothing else (NaN and infinity become null)."""
    json.dump(_finite(data), sys.stdout, indent=2, default=str, allow_nan=False)
    sys.stdout.write("\n")


def _finite(data: Any) -> Any:
    """``data`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def print_records(
    records: list[dict[str, Any]], *, as_json: bool, title: str, columns: list[str]
) -> None:
    """Records as one JSON document, or as a rich table of ``columns`` for people."""
    if as_json:
        print_json(records)
        return
    from convscope.render.tables import records_table

    console().print(records_table(title, records, columns))


def print_result(result: Any, *, as_json: bool) -> None:
    """A result object as JSON (its ``to_dict()``), or rendered by rich for people."""
    if as_json:
        print_json(result.to_dict())
    else:
        console().print(result)


def console() -> Console:
    """The stdout console for people (no ``:name:`` emoji codes: ``run:ID:`` is not one).

    Piped into a file or another program, tables get 120 columns instead of rich's 80
    (``COLUMNS`` still decides when set).
    """
    out = Console(emoji=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = max(out.width, 120)
    return out


@contextmanager
def download_progress(enabled: bool) -> Iterator[Callable[[int, int | None, str], None] | None]:
    """A byte progress bar on stderr (only on a terminal), as a ``progress`` callback."""
    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(done: int, total: int | None, description: str) -> None:
            if description not in tasks:
                tasks[description] = progress.add_task(description, total=total)
            progress.update(tasks[description], completed=done, total=total)

        yield update


def output_file(value: str) -> Path:
    """argparse type of a file to write: refused before any work if it cannot be written."""
    from convscope.files import unwritable_reason

    reason = unwritable_reason(value)
    if reason:
        raise argparse.ArgumentTypeError(reason)
    return Path(value)


def add_out_argument(parser: argparse.ArgumentParser, what: str, *, required: bool = False) -> None:
    """``--out F``: where a figure goes, its format named by the suffix (.png, .svg, .pdf)."""
    parser.add_argument(
        "--out",
        type=output_file,
        required=required,
        metavar="F",
        help=f"write {what} to F (.png, .svg or .pdf)",
    )


def write_figure(fig: Any, path: Path) -> Path:
    """Save a figure atomically and say where on stderr."""
    from convscope.render.figures import save_figure

    written = save_figure(fig, path)
    announce(written)
    return written


def write_npy(path: Path, array: Any) -> Path:
    """Save an array as ``.npy`` atomically and say where on stderr."""
    import numpy as np

    from convscope.errors import ConvscopeError
    from convscope.files import atomic_write, check_writable

    path = Path(path)
    if path.suffix != ".npy":
        raise ConvscopeError(f"cannot write {path}: an array file name must end in .npy")
    check_writable(path)
    with atomic_write(path) as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)
    announce(path)
    return path


def announce(path: Path) -> None:
    """``wrote PATH`` on stderr, so stdout stays clean for ``--json``."""
    sys.stderr.write(f"wrote {path}\n")


@contextmanager
def task_progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """Bars for counted work on stderr (terminals only): ``update(description, done, total)``."""
    from rich.progress import MofNCompleteColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        tasks: dict[str, Any] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = progress.add_task(description, total=total)
            progress.update(tasks[description], completed=done, total=total)

        yield update
