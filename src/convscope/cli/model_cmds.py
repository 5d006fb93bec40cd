"""Model commands: ``models``, ``summary``, ``layers``, ``predict``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from convscope.cli.app import add_command
from convscope.cli.output import add_store_argument, print_records, print_result
from convscope.errors import ConvscopeError
from convscope.models.constants import PREPROCESS_MODES

if TYPE_CHECKING:
    from convscope.data.spec import InputImage
    from convscope.models.loaded import LoadedModel

MODEL_HELP = (
    "a zoo name (convscope models), torchvision:NAME, timm:NAME, path/file.py:factory, "
    "run:ID (a run's latest checkpoint), a checkpoint file or a Keras .keras/.h5 file"
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the model commands."""
    models = add_command(
        commands, "models", "List the model zoo.", "  convscope models\n  convscope models --json"
    )
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(handler=run_models)

    summary = add_command(
        commands,
        "summary",
        "Layer-by-layer summary: output shapes and parameters, like Keras.",
        "  convscope summary lenet\n  convscope summary torchvision:resnet18 --depth 2\n"
        "  convscope summary my_net.py:build --input-shape 3,32,32 --json",
    )
    add_model_arguments(summary)
    summary.add_argument("--depth", type=int, default=4, help="nesting depth to show (default 4)")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(handler=run_summary)

    layers = add_command(
        commands,
        "layers",
        "List the addressable layers (module names) and their output shapes.",
        "  convscope layers residual\n  convscope layers resnet50 --json",
    )
    add_model_arguments(layers)
    layers.add_argument("--json", action="store_true", help="print JSON instead of a table")
    layers.set_defaults(handler=run_layers)

    predict = add_command(
        commands,
        "predict",
        "Predict classes of images with their probabilities.\n\n"
        "IMAGE is a file, a folder of images, DATASET:SPLIT:INDEX, DATASET:SPLIT:A-B\n"
        "(A inclusive, B exclusive) or a sample photo (sample:china, sample:chelsea, ...).\n"
        "Images are converted to what the model expects.",
        "  convscope predict lenet --image mnist:test:12\n"
        "  convscope predict run.ckpt --image fashion-mnist:test:0-16 --json\n"
        "  convscope predict resnet50 --weights r50.pth --image cat.jpg --top 5",
    )
    add_model_arguments(predict)
    predict.add_argument("--image", required=True, metavar="SPEC", help="the image(s) to predict")
    predict.add_argument("--top", type=int, default=3, metavar="K", help="classes to list (3)")
    predict.add_argument(
        "--class",
        dest="classes",
        metavar="C",
        help="also give the probability of these classes: an index, a name, A-B, a list "
        "or all (the grammar of maximize --class)",
    )
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.set_defaults(handler=run_predict)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL plus ``--weights`` and ``--input-shape``, shared by every command on a model."""
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument(
        "--weights",
        type=weights_value,
        metavar="FILE|URL|NAME",
        help="the weights to load: a state dict or checkpoint file; a URL (downloaded with "
        "torch.hub into $TORCH_HOME/hub/checkpoints, used from there afterwards); or "
        "'imagenet', the library's pretrained weights for resnet50, efficientnet-lite0, "
        "torchvision:NAME and timm:NAME (a torchvision weights name such as IMAGENET1K_V2 "
        "or a timm tag picks others), fetched into the library's cache and used from it "
        "offline",
    )
    parser.add_argument(
        "--seed",
        type=seed_value,
        default=0,
        metavar="S",
        help="seed of the random initial weights of a model given no weights, and of any "
        "other randomness of the command, so every run gives the same answer (default 0)",
    )
    add_store_argument(parser)
    parser.add_argument(
        "--input-shape",
        type=parse_shape,
        metavar="C,H,W",
        help="input shape of a model from a .py file (or a Keras model taking any size)",
    )
    parser.add_argument(
        "--preprocess",
        choices=list(PREPROCESS_MODES),
        metavar="MODE",
        help="what pixel values the model takes, overriding its own: "
        + "; ".join(f"{mode}: {text}" for mode, text in PREPROCESS_MODES.items())
        + " (default: the model's own)",
    )


def add_index_argument(parser: argparse.ArgumentParser) -> None:
    """``--index I``: which image of a SPEC naming several a one-image command uses."""
    parser.add_argument(
        "--index",
        type=int,
        default=0,
        metavar="I",
        help="which image of a SPEC naming several to use (0-based; default 0, the first)",
    )


def chosen_image(
    args: argparse.Namespace, model: LoadedModel, *, resized: bool = True
) -> InputImage:
    """The ``--index`` image of ``--image``; a note on stderr says which, when there are more,
    and (when it is ``resized`` to the model's input) whether it is scaled up."""
    import sys

    from convscope.data.stream import chosen_image_note, pick_image

    image, count = pick_image(args.image, args.index, input_spec=model.input_spec)
    note = chosen_image_note(args.image, count, args.index, image.name)
    if note:
        sys.stderr.write(f"convscope: note: {note}\n")
    if resized:
        note_upscaled([image], model)
    return image


def note_upscaled(images: list[InputImage], model: LoadedModel, most: int = 3) -> None:
    """A note on stderr for each image scaled up by more than 2x (the first ``most``)."""
    import sys

    from convscope.data.images import upscale_note

    notes = [upscale_note(im.name, im.pixels.shape, model.input_spec) for im in images]
    notes = [note for note in notes if note]
    for note in notes[:most]:
        sys.stderr.write(f"convscope: note: {note}\n")
    if len(notes) > most:
        sys.stderr.write(f"convscope: note: and {len(notes) - most} more images scaled up\n")


def seed_value(text: str) -> int:
    """``--seed``: a whole number from 0 to 2**32 - 1 (what every seeded generator takes)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to 2**32 - 1 (4294967295), got {text!r}"
        )
    return value


def weights_value(text: str) -> str:
    """``--weights``: kept as typed (a path, a URL or a name; see ``load_weights``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a weights file, a URL or a name such as imagenet")
    scheme = text.split("://", 1)[0].lower() if "://" in text else None
    if scheme is not None and scheme not in ("http", "https"):
        raise argparse.ArgumentTypeError(
            f"unsupported URL scheme {scheme}:// in {text!r}; give an http(s) URL or a file path"
        )
    return text


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"3,32,32"`` -> ``(3, 32, 32)``."""
    try:
        channels, height, width = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}") from None
    if min(channels, height, width) <= 0:
        raise argparse.ArgumentTypeError(f"C,H,W must be positive, got {text!r}")
    return channels, height, width


def load(args: argparse.Namespace) -> LoadedModel:
    """The model the arguments name."""
    from convscope.models.loading import load_model

    return load_model(
        args.model,
        weights=args.weights,
        input_shape=args.input_shape,
        seed=getattr(args, "seed", None),
        store=args.store,
        preprocess=getattr(args, "preprocess", None),
    )


def run_models(args: argparse.Namespace) -> int:
    from convscope.models.registry import zoo_records

    records = zoo_records()
    columns = ["name", "params", "input_shape", "dataset", "description"]
    print_records(records, as_json=args.json, title="convscope model zoo", columns=columns)
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from convscope.probe.summary import summarize

    if args.depth < 1:
        raise ConvscopeError("--depth must be at least 1")
    result = summarize(load(args), depth=args.depth)
    print_result(result, as_json=args.json)
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from convscope.probe.summary import summarize

    result = summarize(load(args), depth=64)
    records = [
        {"name": r.name, "type": r.type, "output_shape": r.output_shape, "params": r.params}
        for r in result.layers
    ]
    columns = ["name", "type", "output_shape", "params"]
    print_records(records, as_json=args.json, title=f"{result.model}: layers", columns=columns)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from convscope.data.spec import resolve_images, to_batch
    from convscope.probe.predict import predict

    if args.top < 1:
        raise ConvscopeError("--top must be at least 1")
    model = load(args)
    images = resolve_images(args.image, input_spec=model.input_spec)
    note_upscaled(images, model)
    batch = to_batch(images, model.input_spec)
    labels = [image.label_name for image in images]
    result = predict(
        model,
        batch,
        [image.name for image in images],
        top_k=args.top,
        labels=labels,
        classes=args.classes,
    )
    print_result(result, as_json=args.json)
    return 0
