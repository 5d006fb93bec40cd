"""``convscope train``: train a model on a built-in dataset, recorded in the run store."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from convscope.cli.app import add_command
from convscope.cli.output import add_store_argument, console, output_file, print_json
from convscope.errors import ConvscopeError
from convscope.train.constants import LR_SCHEDULES, OPTIMIZERS

if TYPE_CHECKING:
    from convscope.train.loop import ProgressFn, TrainConfig, TrainResult


def add_training_arguments(parser: argparse.ArgumentParser, *, batch_size: int = 128) -> None:
    """Optimiser, schedule and recording options shared by ``train`` and ``study``."""
    parser.add_argument("--epochs", type=int, default=1, help="passes over the data (1)")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"examples per step ({batch_size})"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (0.001)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(adam)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="(0)")
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="none",
        help="per-epoch schedule: cosine, or step (/10 each third) (none)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop early after N epochs without a better validation loss",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for init, shuffling, dropout (0)")
    parser.add_argument("--val-split", type=float, default=0.2, help="validation fraction (0.2)")
    parser.add_argument(
        "--validation",
        metavar="SPLIT",
        help="validate on this split of the dataset (e.g. test) instead of a split",
    )
    parser.add_argument(
        "--subset",
        type=int,
        metavar="N",
        help="train on a stratified sample of N images (quick looks)",
    )
    parser.add_argument(
        "--probe-per-class",
        type=int,
        default=100,
        metavar="N",
        help="probe-set images per class for --record (100)",
    )
    parser.add_argument("--record-batch-loss", action="store_true", help="keep every batch's loss")
    add_store_argument(parser)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    train = add_command(
        commands,
        "train",
        "Train a model, recording every epoch in the run store.\n\n"
        "Epoch 0 is the model before any update. Each epoch commits its metrics, the\n"
        "--record layers' outputs on a fixed stratified probe set (taken from the\n"
        "validation part), every conv layer's kernels and a checkpoint. A run killed\n"
        "at any moment continues with --resume RUN, losing at most the epoch in progress.",
        "  convscope train lenet --data mnist --epochs 12\n"
        "  convscope train residual --data fashion-mnist --epochs 3 --batch-size 500 --record hidden\n"
        "  convscope train lenet5 --data mnist --subset 2000 --epochs 1 --json\n"
        "  convscope train --resume 3fa2c1d0",
    )
    train.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="what to train (zoo name, torchvision:NAME, file.py:factory, ...)",
    )
    train.add_argument("--weights", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    train.add_argument("--input-shape", metavar="C,H,W", help=argparse.SUPPRESS)
    train.add_argument("--data", metavar="NAME", help="mnist or fashion-mnist")
    add_training_arguments(train)
    train.add_argument(
        "--record",
        default="",
        metavar="L1,L2",
        help="layers whose outputs on the probe set are kept each epoch",
    )
    train.add_argument("--name", help="a name for the run (default MODEL-DATA)")
    train.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    train.add_argument(
        "--save", type=output_file, metavar="FILE", help="also write the final checkpoint here"
    )
    train.add_argument("--json", action="store_true", help="print the metrics as JSON")
    train.set_defaults(handler=run_train)


def config_from(args: argparse.Namespace) -> TrainConfig:
    """The training settings the arguments ask for."""
    from convscope.train.loop import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        seed=args.seed,
        val_split=args.val_split,
        lr_schedule=args.lr_schedule,
        patience=args.patience,
    )


@contextmanager
def epoch_progress(enabled: bool, epochs: int, label: str = "") -> Iterator[ProgressFn | None]:
    """A per-epoch bar with running loss and accuracy on stderr (terminals only)."""
    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.4f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        state: dict = {"epoch": 0, "task": None}

        def update(phase: str, done: int, total: int, loss: float, acc: float) -> None:
            if done == 1:
                state["epoch"] += 1
                state["task"] = progress.add_task(
                    f"{label}epoch {state['epoch']}/{epochs}", total=total, loss=loss, acc=acc
                )
            progress.update(state["task"], completed=done, loss=loss, acc=acc)

        yield update


def run_train(args: argparse.Namespace) -> int:
    from convscope.models.checkpoint import save_checkpoint
    from convscope.store import open_store
    from convscope.train.run import RunSettings, resume_run, run_settings, train_distributed

    if args.resume:
        with open_store(args.store, create=False) as store:
            epochs = run_settings(store.run(args.resume)).config.epochs
            with epoch_progress(not args.json, epochs) as progress:
                outcome = resume_run(args.resume, store=store, progress=progress)
    else:
        if not args.model or not args.data:
            raise ConvscopeError(
                "say what to train: convscope train MODEL --data NAME (or --resume RUN)"
            )
        if args.weights or args.input_shape:
            raise ConvscopeError(
                "--weights and --input-shape are not supported by train yet; "
                "save a checkpoint and train that instead"
            )
        settings = RunSettings(
            model=args.model,
            data=args.data,
            config=config_from(args),
            record=tuple(n for n in args.record.split(",") if n),
            name=args.name,
            probe_per_class=args.probe_per_class,
            subset=args.subset,
            record_batch_loss=args.record_batch_loss,
            validation=args.validation,
        )
        trained = train_distributed(
            settings, args.store, lambda: epoch_progress(not args.json, args.epochs)
        )
        if trained is None:  # a torchrun worker rank: rank 0 records and reports
            _end_worker_rank()
        outcome = trained
    if args.save:
        save_checkpoint(outcome.model, args.save, extra={"train": outcome.result.to_dict()})
    report(args, outcome.run_id, outcome.model.name, outcome.result)
    return 0


def _end_worker_rank() -> NoReturn:
    """End a torchrun worker rank (not 0) once its process group is destroyed.

    In CI a worker rank sometimes aborted while the interpreter shut down ("terminate
    called without an active exception", SIGABRT from a C++ thread torch leaves behind),
    which made torchrun kill rank 0 and fail the run. The worker has nothing left to
    write, so it skips interpreter shutdown.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def report(args: argparse.Namespace, run_id: str, model: str, result: TrainResult) -> None:
    """Print a finished run's numbers (JSON or text); a diverged run gets a warning on stderr."""
    if result.warning:
        sys.stderr.write(f"convscope: warning: {result.warning}\n")
    if args.json:
        print_json(
            {
                "run_id": run_id,
                "model": model,
                "store": str(args.store),
                **result.to_dict(),
                "checkpoint": str(args.save) if args.save else None,
            }
        )
        return
    out = console()
    for e in result.epochs:
        val = (
            f"  val loss {e.val_loss:.4f}  val acc {e.val_acc:.4f}" if e.val_acc is not None else ""
        )
        if e.train_loss is None:
            out.print(f"epoch 0 (before training):{val}")
            continue
        out.print(
            f"epoch {e.epoch}: loss {e.train_loss:.4f}  acc {e.train_acc:.4f}{val}  "
            f"({e.seconds:.1f} s)"
        )
    if result.stopped_early:
        out.print("stopped early: the validation loss stopped improving")
    out.print(
        f"[bold]{model}: test accuracy {result.test_acc:.4f}[/] (test loss {result.test_loss:.4f})"
    )
    out.print(f"run {run_id} in {args.store}" + (f"; checkpoint {args.save}" if args.save else ""))
