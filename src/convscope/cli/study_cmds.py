"""``convscope study``: train several architectures the same way and compare them."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from convscope.cli.app import add_command
from convscope.cli.output import console, print_json
from convscope.cli.train_cmds import add_training_arguments, config_from
from convscope.errors import ConvscopeError
from convscope.files import check_folder
from convscope.train.constants import STUDY_MODELS


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``study``."""
    study = add_command(
        commands,
        "study",
        "Train several architectures with the same data, settings and seed.\n\n"
        "The defaults reproduce the architectures reference: sequential, inception, residual\n"
        "and inception-residual on Fashion-MNIST, Adam, batch 500, validation split 0.2,\n"
        "the 'hidden' layer recorded on the probe set from epoch 0. Each model becomes a run\n"
        "of the study in the store; the study folder gets the curves of all models on one\n"
        "chart, a results table, confusion matrices and an index.html.",
        "  convscope study --epochs 10\n"
        "  convscope study --epochs 2 --subset 12000 --out study-quick\n"
        "  convscope study --resume architectures      # after a crash, Ctrl-C or SIGKILL\n"
        "  convscope study --models lenet,lenet5 --data mnist --record dense_1 --batch-size 128",
    )
    study.add_argument(
        "--models",
        default=",".join(STUDY_MODELS),
        metavar="A,B",
        help=f"models to compare ({','.join(STUDY_MODELS)})",
    )
    study.add_argument("--data", default="fashion-mnist", metavar="NAME", help="(fashion-mnist)")
    study.add_argument(
        "--record",
        default="hidden",
        metavar="L1,L2",
        help="layers recorded on the probe set every epoch (hidden)",
    )
    study.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train each model N times (seeds S, S+1, ...) for means and confidence intervals (1)",
    )
    study.add_argument("--name", default="architectures", help="the study's name (architectures)")
    study.add_argument(
        "--resume",
        metavar="NAME",
        help="finish an interrupted study from its runs in the store, with the settings it "
        "began with (finished runs are kept, an interrupted one continues)",
    )
    study.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="the study folder (default ./convscope-studies/NAME)",
    )
    add_training_arguments(study, batch_size=500)
    study.set_defaults(epochs=10)
    study.add_argument("--json", action="store_true", help="print the results as JSON")
    study.set_defaults(handler=run_study_command)


def run_study_command(args: argparse.Namespace) -> int:
    from convscope.report.study import FORMATS, HEADINGS, results_rows
    from convscope.store import open_store
    from convscope.train.study import StudySettings, resume_study, run_study

    models = tuple(m for m in args.models.split(",") if m)
    if not models:
        raise ConvscopeError("--models needs at least one model name")
    name = args.resume or args.name
    out_dir = check_folder(args.out or Path("convscope-studies") / name)
    out = console()
    with (
        open_store(args.store, create=not args.resume) as store,
        study_progress(not args.json) as (on_epoch, progress_for),
    ):
        if args.resume:
            result = resume_study(
                args.resume,
                store=store,
                out_dir=out_dir,
                progress_for=progress_for,
                on_epoch=on_epoch,
            )
        else:
            settings = StudySettings(
                name=args.name,
                models=models,
                data=args.data,
                config=config_from(args),
                record=tuple(n for n in args.record.split(",") if n),
                subset=args.subset,
                probe_per_class=args.probe_per_class,
                validation=args.validation,
                seeds=args.seeds,
            )
            result = run_study(
                settings,
                store=store,
                out_dir=out_dir,
                progress_for=progress_for,
                on_epoch=on_epoch,
            )
    rows = results_rows(result)
    if args.json:
        print_json(
            {"study": result.name, "dataset": result.dataset, "out": str(out_dir), "results": rows}
        )
        return 0
    from convscope.render.tables import records_table

    columns = [
        c
        for c in ("model", "test_acc", "best_val_acc", "params", "seconds_per_epoch")
        if c in rows[0]
    ]
    title = f"study {result.name} on {result.dataset}"
    out.print(records_table(title, rows, columns, headers=HEADINGS, formats=FORMATS))
    out.print(f"study folder: {out_dir / 'index.html'}")
    return 0


@contextmanager
def study_progress(
    enabled: bool,
) -> Iterator[tuple[Callable[[Any], None] | None, Callable[[str], Any] | None]]:
    """Epoch lines and an overall bar (models x epochs, time left) on stderr, terminals only.

    Yields the study's ``on_epoch`` callback and its per-run ``progress_for``; both are
    None (nothing printed) when not enabled or stderr is not a terminal.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None, None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as bars:
        overall = bars.add_task("study", total=1, detail="")
        state: dict[str, Any] = {"done": 0, "total": 0, "started": time.monotonic(), "kept": 0}

        def show(done: float) -> None:
            total = state["total"] or 1
            trained = done - state["kept"]
            spent = time.monotonic() - state["started"]
            left = spent / trained * (total - done) if trained > 0 else None
            detail = f"{int(done)}/{total} epochs"
            if left is not None:
                detail += f", about {_duration(left)} left"
            bars.update(overall, completed=done, total=total, detail=detail)

        def on_epoch(event: Any) -> None:
            if event.stored:
                state["kept"] += event.done - state["done"]
            state["done"], state["total"] = event.done, event.total
            bars.console.print(event.line())
            show(event.done)

        @contextmanager
        def progress_for(label: str) -> Iterator[Callable[..., None]]:
            batches = bars.add_task(label, total=1, detail="")

            def update(phase: str, done: int, total: int, loss: float, acc: float) -> None:
                bars.update(
                    batches,
                    completed=done,
                    total=total,
                    detail=f"batch {done}/{total}  loss {loss:.4f}  acc {acc:.4f}",
                )
                show(state["done"] + done / total)

            try:
                yield update
            finally:
                bars.remove_task(batches)

        yield on_epoch, progress_for


def _duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
