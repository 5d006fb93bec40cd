"""``convscope train``: train a model on a built-in dataset."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_model_arguments, load
from convscope.cli.output import console, print_json
from convscope.errors import ConvscopeError
from convscope.train.loop import OPTIMIZERS, ProgressFn, TrainConfig


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    train = add_command(
        commands,
        "train",
        "Train a model on MNIST or Fashion-MNIST and report its accuracy.\n\n"
        "A stratified, seeded validation split is held out of the training set;\n"
        "the test accuracy is measured once at the end.",
        "  convscope train lenet --data mnist --epochs 12 --save lenet.ckpt\n"
        "  convscope train residual --data fashion-mnist --epochs 2 --batch-size 500\n"
        "  convscope train lenet5 --data mnist --subset 2000 --epochs 1 --json",
    )
    add_model_arguments(train)
    train.add_argument("--data", required=True, metavar="NAME", help="mnist or fashion-mnist")
    train.add_argument("--epochs", type=int, default=1, help="passes over the data (1)")
    train.add_argument("--batch-size", type=int, default=128, help="examples per step (128)")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (0.001)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(adam)")
    train.add_argument("--weight-decay", type=float, default=0.0, help="(0)")
    train.add_argument("--seed", type=int, default=0, help="seed for init, shuffling, dropout (0)")
    train.add_argument("--val-split", type=float, default=0.2, help="validation fraction (0.2)")
    train.add_argument(
        "--subset",
        type=int,
        metavar="N",
        help="train on a stratified sample of N images (quick looks)",
    )
    train.add_argument("--save", type=Path, metavar="FILE", help="write a checkpoint here")
    train.add_argument("--json", action="store_true", help="print the metrics as JSON")
    train.set_defaults(handler=run_train)


@contextmanager
def epoch_progress(enabled: bool, epochs: int) -> Iterator[ProgressFn | None]:
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
        state = {"epoch": 0, "task": None}

        def update(phase: str, done: int, total: int, loss: float, acc: float) -> None:
            if done == 1:
                state["epoch"] += 1
                state["task"] = progress.add_task(
                    f"epoch {state['epoch']}/{epochs}", total=total, loss=loss, acc=acc
                )
            progress.update(state["task"], completed=done, loss=loss, acc=acc)

        yield update


def run_train(args: argparse.Namespace) -> int:
    from convscope.data.datasets import load_dataset
    from convscope.data.sampling import stratified_indices
    from convscope.models.checkpoint import save_checkpoint
    from convscope.train.loop import fit

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        seed=args.seed,
        val_split=args.val_split,
    )
    model = load(args)
    train, test = load_dataset(args.data, "train"), load_dataset(args.data, "test")
    if model.class_names and len(model.class_names) != len(train.class_names):
        raise ConvscopeError(
            f"{model.name} predicts {len(model.class_names)} classes but {args.data} has "
            f"{len(train.class_names)}"
        )
    if args.subset is not None:
        n_classes = len(train.class_names)
        if args.subset < 2 * n_classes:
            raise ConvscopeError(f"--subset must be at least {2 * n_classes} (2 per class)")
        keep = stratified_indices(train.labels, args.subset // n_classes, seed=args.seed)
        train = replace(train, images=train.images[keep], labels=train.labels[keep])
    with epoch_progress(not args.json, config.epochs) as progress:
        result = fit(model, train, test, config, progress=progress, on_epoch=None)
    model.class_names = train.class_names
    model.dataset = args.data
    if args.save:
        save_checkpoint(model, args.save, extra={"train": result.to_dict(), "data": args.data})
    if args.json:
        print_json(
            {
                "model": model.name,
                "data": args.data,
                **result.to_dict(),
                "checkpoint": str(args.save) if args.save else None,
            }
        )
        return 0
    out = console()
    for e in result.epochs:
        val = (
            f"  val loss {e.val_loss:.4f}  val acc {e.val_acc:.4f}" if e.val_acc is not None else ""
        )
        out.print(
            f"epoch {e.epoch}: loss {e.train_loss:.4f}  acc {e.train_acc:.4f}{val}  "
            f"({e.seconds:.1f} s)"
        )
    out.print(
        f"[bold]{model.name} on {args.data}: test accuracy {result.test_acc:.4f}[/] "
        f"(test loss {result.test_loss:.4f})"
    )
    if args.save:
        out.print(f"checkpoint: {args.save}")
    return 0
