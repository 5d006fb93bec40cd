"""Export commands: ``export`` (a run to TensorBoard) and ``export-model`` (a model to ONNX)."""

from __future__ import annotations

import argparse
from pathlib import Path

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_model_arguments, load
from convscope.cli.output import add_store_argument, announce, console, output_file, print_json
from convscope.errors import ConvscopeError


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``export`` and ``export-model``."""
    export = add_command(
        commands,
        "export",
        "Export a recorded run as TensorBoard event files.\n\n"
        "Writes DIR/<run id>/: the metrics per epoch as scalars (loss/train, loss/val,\n"
        "accuracy/..., lr; step = epoch, 0 = before training), each conv layer's kernels\n"
        "per epoch as images, and each recorded layer's snapshots per epoch for the\n"
        "embedding projector, labelled with class names. Export several runs into one DIR\n"
        "and `tensorboard --logdir DIR` shows them side by side. To copy a run's own\n"
        "files instead, use `convscope runs export RUN --to DIR`.",
        "  convscope export 3fa2 --tensorboard tb/\n"
        "  convscope export tiny/residual --tensorboard tb/ --layers hidden,conv2D_1\n"
        "  convscope export 3fa2 --tensorboard tb/ --force --json\n"
        "  tensorboard --logdir tb/",
    )
    export.add_argument("run", metavar="RUN", help="a run id, a unique id prefix or a run name")
    export.add_argument(
        "--tensorboard",
        type=Path,
        required=True,
        metavar="DIR",
        help="write TensorBoard event files into DIR/<run id>/",
    )
    add_store_argument(export)
    export.add_argument(
        "--layers",
        type=_names,
        metavar="L1,L2",
        help="only these layers' kernels and embeddings (default: every recorded layer)",
    )
    export.add_argument(
        "--no-images",
        action="store_true",
        help="leave the probe images (sprites) out of the projector",
    )
    export.add_argument(
        "--force", action="store_true", help="replace an earlier export of the run in DIR"
    )
    export.add_argument("--json", action="store_true", help="print what was written as JSON")
    export.set_defaults(handler=run_export)

    model = add_command(
        commands,
        "export-model",
        "Export a model as an ONNX file that carries its input spec and class names.\n\n"
        "The batch axis is dynamic; the input is called 'input', the output 'logits'\n"
        "('probabilities' for models ending in a softmax, 'features' for a model that\n"
        "is not a classifier). The file's metadata\n"
        "(convscope.input_spec, convscope.class_names) says how to preprocess. By default\n"
        "the file is run with onnxruntime on a few test images and compared with PyTorch;\n"
        "it is written only when they agree (--no-check skips this).",
        "  convscope export-model lenet5 --onnx lenet5.onnx\n"
        "  convscope export-model run:3fa2 --onnx residual.onnx --json\n"
        "  convscope export-model resnet50 --weights r50.pth --onnx r50.onnx --opset 18\n"
        "  convscope export-model my_net.py:build --input-shape 3,32,32 --onnx net.onnx "
        "--exporter torchscript",
    )
    add_model_arguments(model)
    model.add_argument(
        "--onnx", type=output_file, required=True, metavar="FILE", help="the .onnx file"
    )
    model.add_argument(
        "--opset", type=int, metavar="N", help="ONNX opset version (default: the exporter's)"
    )
    model.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        default="dynamo",
        help="torch.export-based exporter (default) or the older TorchScript tracer",
    )
    model.add_argument(
        "--image",
        metavar="SPEC",
        help="images to check with (default: the model's test images, else random pixels)",
    )
    model.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime comparison with PyTorch"
    )
    model.add_argument("--json", action="store_true", help="print what was written as JSON")
    model.set_defaults(handler=run_export_model)


def _names(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give layer names such as hidden,conv2D_1")
    return names


def run_export(args: argparse.Namespace) -> int:
    from convscope.export.tensorboard import export_tensorboard

    result = export_tensorboard(
        args.store,
        args.run,
        args.tensorboard,
        layers=args.layers,
        force=args.force,
        sprites=not args.no_images,
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    announce(result.dir)
    sprites = " with probe images" if result.sprites else ""
    console().print(
        f"run {result.run}: {result.scalars} scalar values, {result.images} kernel images, "
        f"{result.embeddings} embeddings{sprites} in {result.dir}\n"
        f"view them with: tensorboard --logdir {result.dir.parent}",
        soft_wrap=True,
        highlight=False,
    )
    return 0


def run_export_model(args: argparse.Namespace) -> int:
    from convscope.export.onnx import export_onnx

    if args.image and args.no_check:
        raise ConvscopeError("--image chooses the check's inputs; it cannot go with --no-check")
    loaded = load(args)
    inputs = label = None
    if args.image:
        from convscope.data.spec import resolve_images, to_batch

        images = resolve_images(args.image, input_spec=loaded.input_spec)
        inputs = to_batch(images, loaded.input_spec)
        label = args.image
    result = export_onnx(
        loaded,
        args.onnx,
        opset=args.opset,
        exporter=args.exporter,
        check=not args.no_check,
        inputs=inputs,
        inputs_label=label,
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    announce(result.path)
    lines = [
        f"{result.model}: ONNX opset {result.opset} ({result.exporter} exporter), "
        f"{result.bytes:,} bytes, input '{result.input_name}' batch x "
        f"{' x '.join(str(s) for s in result.input_shape)}, output '{result.output_name}'"
    ]
    if result.check is not None:
        check = result.check
        lines.append(
            f"onnxruntime agrees with PyTorch on {check.inputs}: max difference "
            f"{check.max_abs_diff:.2e} (tolerance {check.tolerance:.1e})"
        )
    console().print("\n".join(lines), soft_wrap=True, highlight=False)
    return 0
