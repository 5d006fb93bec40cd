"""``convscope runs list|show|check|delete|export``: look after the run store."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convscope.cli.app import ArgumentParser, add_command
from convscope.cli.output import add_store_argument, console, print_json, print_records

if TYPE_CHECKING:
    from convscope.store import ArtifactRecord, RunRecord, RunStore

LIST_KEYS = ("id", "name", "study", "model", "dataset", "status", "epochs_completed", "created")


def _common(parser: ArgumentParser, *, json_help: str = "print JSON instead of a table") -> None:
    """``--store`` and ``--json``, which every runs subcommand takes."""
    add_store_argument(parser)
    parser.add_argument("--json", action="store_true", help=json_help)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``runs`` command group."""
    runs = add_command(
        commands,
        "runs",
        "The run store: list, inspect, check, delete and export training runs.",
        "  convscope runs list\n  convscope runs show 3fa2 --json\n"
        "  convscope runs check --store ./convscope-runs\n"
        "  convscope runs export lenet-mnist --to ./exports",
    )
    sub = runs.add_subparsers(
        dest="runs_command", metavar="SUBCOMMAND", parser_class=ArgumentParser
    )
    _register_list(sub)
    _register_show(sub)
    _register_check(sub)
    _register_delete(sub)
    _register_export(sub)
    runs.set_defaults(handler=lambda args: runs.print_help())


def _register_list(sub: argparse._SubParsersAction) -> None:
    listing = add_command(
        sub,
        "list",
        "List the runs: id, name, model, dataset, status and epochs completed.",
        "  convscope runs list\n  convscope runs list --study fashion --json",
    )
    _common(listing)
    listing.add_argument("--study", metavar="NAME", help="only the runs of this study")
    listing.set_defaults(handler=run_list)


def _register_show(sub: argparse._SubParsersAction) -> None:
    show = add_command(
        sub,
        "show",
        "Show one run: its config, metrics per epoch and recorded files.\n\n"
        "RUN is a run id, the start of one, or a run name.",
        "  convscope runs show 3fa2c1d0\n  convscope runs show lenet-mnist --json",
    )
    show.add_argument("run", metavar="RUN", help="a run id, a unique id prefix or a run name")
    _common(show, json_help="print JSON instead of tables")
    show.set_defaults(handler=run_show)


def _register_check(sub: argparse._SubParsersAction) -> None:
    check = add_command(
        sub,
        "check",
        "Check the store: database integrity, missing or changed files, orphan files.\n\n"
        "Exit status 1 when a problem is found. Orphans are files no run references,\n"
        "e.g. left by a crash in the middle of an epoch; --fix removes them.",
        "  convscope runs check\n  convscope runs check --json\n  convscope runs check --fix",
    )
    _common(check, json_help="print the report as JSON")
    check.add_argument("--fix", action="store_true", help="delete orphan files")
    check.add_argument("--quick", action="store_true", help="compare sizes, skip checksums")
    check.set_defaults(handler=run_check)


def _register_delete(sub: argparse._SubParsersAction) -> None:
    delete = add_command(
        sub,
        "delete",
        "Delete a run and its files. RUN must be the full id or the exact name.",
        "  convscope runs delete 3fa2c1d0\n  convscope runs delete lenet-mnist --json",
    )
    delete.add_argument("run", metavar="RUN", help="the run's full id or exact name")
    _common(delete, json_help="print what was deleted as JSON")
    delete.add_argument("--force", action="store_true", help="delete even a run still running")
    delete.set_defaults(handler=run_delete)


def _register_export(sub: argparse._SubParsersAction) -> None:
    export = add_command(
        sub,
        "export",
        "Copy a run's files and a run.json (metadata, config, metrics, checksums)\n"
        "into DIR/<run id>/.",
        "  convscope runs export 3fa2 --to ./exports",
    )
    export.add_argument("run", metavar="RUN", help="a run id, a unique id prefix or a run name")
    export.add_argument("--to", required=True, type=Path, metavar="DIR", help="where to export")
    _common(export, json_help="print the export's path as JSON")
    export.set_defaults(handler=run_export)


def _open(args: argparse.Namespace) -> RunStore:
    """The store of ``--store``, which must exist already."""
    from convscope.store import open_store

    return open_store(args.store, create=False)


def _summary(record: RunRecord) -> dict[str, Any]:
    """The list fields of a run."""
    data = record.to_dict()
    return {key: data[key] for key in LIST_KEYS}


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        records = [_summary(r) for r in store.runs(study=args.study)]
    if args.json:
        print_json(records)
        return 0
    if not records:
        console().print(f"no runs in {args.store}")
        return 0
    people = [r | {"epochs": _epochs_text(r["epochs_completed"])} for r in records]
    columns = ["id", "name", "study", "model", "dataset", "status", "epochs"]
    if not any(r["study"] for r in records):
        columns.remove("study")
    print_records(people, as_json=False, title=f"Runs in {args.store}", columns=columns)
    return 0


def _when(timestamp: str | None) -> str:
    """An ISO UTC timestamp shortened for a table: ``2024-05-01 12:00``."""
    return (timestamp or "")[:16].replace("T", " ")


def _epochs_text(value: int) -> str:
    """Epochs completed for people: a dash when not even epoch 0 is recorded."""
    return "–" if value < 0 else str(value)


def run_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.json:
            print_json(store.run_document(args.run))
            return 0
        record = store.run(args.run)
        metrics = store.metric_rows(record.id)
        artifacts = store.artifacts(record.id)
    _show_people(record, metrics, artifacts)
    return 0


def _show_people(
    record: RunRecord, metrics: list[dict[str, Any]], artifacts: list[ArtifactRecord]
) -> None:
    """A run as rich tables: metadata, metrics per epoch, files grouped by kind and name."""
    from rich.table import Table

    out = console()
    meta = Table(title=f"Run {record.id}", show_header=False)
    meta.add_column(style="bold")
    meta.add_column()
    for key in ("name", "study", "model", "dataset", "status"):
        meta.add_row(key, str(getattr(record, key) or ""))
    meta.add_row("created", _when(record.created))
    meta.add_row("finished", _when(record.finished))
    meta.add_row("epochs completed", _epochs_text(record.epochs_completed))
    meta.add_row("config", ", ".join(f"{k}={v}" for k, v in record.config.items()))
    out.print(meta)
    if metrics:
        columns = list(dict.fromkeys(k for row in metrics for k in row))
        table = Table(title="Metrics")
        for column in columns:
            table.add_column(column, justify="right")
        for row in metrics:
            table.add_row(*(_number(row.get(c)) for c in columns))
        out.print(table)
    if artifacts:
        out.print(_files_table(artifacts))


def _number(value: Any) -> str:
    """A metric cell: four decimals, blank when missing."""
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _files_table(artifacts: list[ArtifactRecord]) -> Any:
    """Files grouped by (kind, name): which epochs, how many, how big."""
    from rich.table import Table

    groups: dict[tuple[str, str], list[ArtifactRecord]] = defaultdict(list)
    for artifact in artifacts:
        groups[artifact.kind, artifact.name].append(artifact)
    table = Table(title="Files")
    for column in ("kind", "name", "epochs", "files", "size"):
        table.add_column(column)
    for (kind, name), group in groups.items():
        epochs = sorted(a.epoch for a in group if a.epoch is not None)
        where = f"{epochs[0]}–{epochs[-1]}" if epochs else "run"
        size = sum(a.bytes for a in group)
        table.add_row(kind, name, where, str(len(group)), f"{size / 1e6:.2f} MB")
    return table


def run_check(args: argparse.Namespace) -> int:
    with _open(args) as store:
        report = store.check(fix_orphans=args.fix, verify_checksums=not args.quick)
    if args.json:
        print_json(report.to_dict())
    else:
        out = console()
        for path in report.removed:
            out.print(f"removed orphan file {path}")
        for problem in report.problems:
            out.print(f"[red]✗[/] {problem}", highlight=False)
        if report.ok:
            out.print(f"[green]✓[/] {args.store}: no problems found")
        else:
            out.print(f"[red]{len(report.problems)} problem(s)[/] in {args.store}")
    return 0 if report.ok else 1


def run_delete(args: argparse.Namespace) -> int:
    with _open(args) as store:
        record = store.delete_run(args.run, force=args.force)
    if args.json:
        print_json({"deleted": {"id": record.id, "name": record.name}})
    else:
        console().print(f"deleted run {record.id} ({record.name}) from {args.store}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    with _open(args) as store:
        path = store.export_run(args.run, args.to)
    if args.json:
        print_json({"id": path.name, "path": str(path)})
    else:
        print(path)
    return 0
