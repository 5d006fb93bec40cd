"""``convscope study``: train several architectures the same way and compare them."""

from __future__ import annotations

import argparse
from pathlib import Path

from convscope.cli.app import add_command
from convscope.cli.output import console, print_json
from convscope.cli.train_cmds import add_training_arguments, config_from, epoch_progress
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
    from convscope.report.study import results_rows
    from convscope.store import open_store
    from convscope.train.study import StudySettings, run_study

    models = tuple(m for m in args.models.split(",") if m)
    if not models:
        raise ConvscopeError("--models needs at least one model name")
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
    out_dir = check_folder(args.out or Path("convscope-studies") / args.name)
    out = console()

    def progress_for(model: str):
        if not args.json:
            out.print(f"[bold]{model}[/]")
        return epoch_progress(not args.json, args.epochs, label=f"{model} ")

    with open_store(args.store) as store:
        result = run_study(settings, store=store, out_dir=out_dir, progress_for=progress_for)
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
    out.print(records_table(f"study {result.name} on {result.dataset}", rows, columns))
    out.print(f"study folder: {out_dir / 'index.html'}")
    return 0
