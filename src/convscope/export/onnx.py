"""A model as an ONNX file that carries its preprocessing, checked against PyTorch.

:func:`export_onnx` traces the model on a dummy batch of the input spec's shape with a
dynamic batch axis (input ``input``, output ``logits``, or ``probabilities`` for models
ending in a softmax) and stores the input spec, class names and output kind as JSON in
the file's ``metadata_props`` (keys ``convscope.*``, read back by :func:`read_metadata`),
so whoever runs the file knows how to feed it. :func:`check_onnx` runs the file with
onnxruntime on a few real inputs and compares with the PyTorch module. The file is
written under a hidden name and renamed at the end; with ``check`` a file that
disagrees with PyTorch is never put in place.

The default exporter is torch's ``torch.export``-based one (``dynamo``, needs
onnxscript), the only one PyTorch keeps developing; ``torchscript`` is the older
tracing exporter (deprecated by PyTorch), kept for models ``torch.export`` cannot
capture, such as a forward that branches on tensor values.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from convscope.errors import ConvscopeError
from convscope.files import check_writable
from convscope.models.modes import evaluating

if TYPE_CHECKING:
    from convscope.data.preprocess import InputSpec
    from convscope.models.loaded import LoadedModel

INSTALL_HINT = "pip install 'convscope[onnx]'"
EXPORTERS = ("dynamo", "torchscript")
INPUT_NAME = "input"
TOLERANCE = 1e-4
"""Largest accepted difference between ONNX and PyTorch outputs, relative to the output
scale: ``TOLERANCE * max(1, max |output|)``."""
CHECK_IMAGES = 8
META_PREFIX = "convscope."

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class OnnxCheck:
    """How the ONNX file's outputs compare with the PyTorch module's on ``n`` inputs.

    ``inputs`` says where the inputs came from (``mnist:test:0-8`` or random pixels);
    the batch is run whole and its first image alone, which also checks the dynamic
    batch axis. ``ok`` when ``max_abs_diff <= tolerance``; ``problem`` says what is wrong
    when the outputs cannot be compared at all (shapes or NaN differ; the difference is
    then infinite).
    """

    inputs: str
    n: int
    max_abs_diff: float
    tolerance: float
    ok: bool
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "inputs": self.inputs,
            "n": self.n,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote; ``check`` is None when the check was skipped."""

    model: str
    path: Path
    opset: int
    exporter: str
    input_name: str
    output_name: str
    input_shape: tuple[int, int, int]
    bytes: int
    metadata: dict[str, str]
    check: OnnxCheck | None

    def to_dict(self) -> dict[str, Any]:
        """The ``export-model --json`` document."""
        return {
            "model": self.model,
            "path": str(self.path),
            "opset": self.opset,
            "exporter": self.exporter,
            "input": self.input_name,
            "output": self.output_name,
            "input_shape": ["batch", *self.input_shape],
            "bytes": self.bytes,
            "check": None if self.check is None else self.check.to_dict(),
        }


def export_onnx(
    loaded: LoadedModel,
    path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    exporter: str = "dynamo",
    check: bool = True,
    inputs: torch.Tensor | None = None,
    inputs_label: str | None = None,
) -> OnnxExport:
    """Write ``loaded`` to ``path`` (``.onnx``) with a dynamic batch axis and its metadata.

    ``opset`` defaults to the exporter's own. With ``check`` the file is run with
    onnxruntime on ``inputs`` (default: see :func:`check_inputs`) and only put in place
    when it agrees with PyTorch; a disagreement or an operator ONNX cannot express is a
    one-line :class:`~convscope.errors.ConvscopeError`.
    """
    onnx = _require("onnx", "exporting to ONNX")
    if exporter not in EXPORTERS:
        raise ConvscopeError(
            f"unknown ONNX exporter {exporter!r}; use one of {', '.join(EXPORTERS)}"
        )
    if exporter == "dynamo":
        _require("onnxscript", "the dynamo ONNX exporter", alternative="--exporter torchscript")
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not 7 <= opset <= newest:
        raise ConvscopeError(
            f"--opset must be from 7 to {newest} (onnx {onnx.__version__}), got {opset}"
        )
    path = _target(path)
    output_name = _output_name(loaded)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _trace(loaded, tmp, opset, exporter, output_name)
        proto = onnx.load(str(tmp))
        if opset is not None and _opset(proto) != opset:
            raise ConvscopeError(
                f"{loaded.name}: the {exporter} exporter wrote opset {_opset(proto)}, not the "
                f"--opset {opset} asked for; nothing written (try --opset {_opset(proto)} "
                "or the other --exporter)"
            )
        _check_batch_axis(loaded, proto, exporter)
        metadata = onnx_metadata(loaded)
        del proto.metadata_props[:]
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=value)
        proto.doc_string = _doc(loaded)
        try:
            onnx.checker.check_model(proto)
        except Exception as exc:
            raise ConvscopeError(
                f"{loaded.name}: the ONNX exporter wrote an invalid model ({_first_line(exc)})"
            ) from exc
        onnx.save(proto, str(tmp))
        result = None
        if check:
            result = check_onnx(loaded, tmp, inputs, inputs_label=inputs_label)
            if not result.ok:
                how = result.problem or (
                    f"differences up to {result.max_abs_diff:.3g}, tolerance {result.tolerance:.3g}"
                )
                raise ConvscopeError(
                    f"{loaded.name}: the ONNX model disagrees with PyTorch on {result.inputs} "
                    f"({how}); nothing written (try the other --exporter)"
                )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return OnnxExport(
        model=loaded.name,
        path=path,
        opset=_opset(proto),
        exporter=exporter,
        input_name=INPUT_NAME,
        output_name=output_name,
        input_shape=loaded.input_spec.shape,
        bytes=path.stat().st_size,
        metadata=metadata,
        check=result,
    )


def check_onnx(
    loaded: LoadedModel,
    path: str | os.PathLike[str],
    inputs: torch.Tensor | None = None,
    *,
    inputs_label: str | None = None,
) -> OnnxCheck:
    """Run the ONNX file with onnxruntime and compare with ``loaded``'s PyTorch outputs."""
    ort = _require("onnxruntime", "checking the ONNX file", alternative="--no-check")
    if inputs is None:
        inputs, label = check_inputs(loaded.input_spec, loaded.dataset)
    else:
        label = inputs_label or f"{len(inputs)} given inputs"
    x = inputs.detach().to(torch.float32).cpu().contiguous()
    if x.ndim != 4 or tuple(x.shape[1:]) != loaded.input_spec.shape:
        raise ConvscopeError(
            f"check inputs have shape {tuple(x.shape)}; {loaded.name} takes N x "
            f"{' x '.join(str(s) for s in loaded.input_spec.shape)}"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ConvscopeError(
            f"{loaded.name}: onnxruntime cannot load the ONNX model ({_first_line(exc)})"
        ) from exc
    name = session.get_inputs()[0].name
    worst, scale, problem = 0.0, 1.0, None
    for batch in (x, x[:1]):
        try:
            got = session.run(None, {name: batch.numpy()})
        except Exception as exc:
            raise ConvscopeError(
                f"{loaded.name}: onnxruntime cannot run the ONNX model on a batch of "
                f"{len(batch)} ({_clip(_ANSI.sub('', str(exc)))})"
            ) from exc
        diff, top, problem = _difference(got, _torch_outputs(loaded, batch))
        if problem is not None:
            problem += f" on a batch of {len(batch)}"
            worst = math.inf
            break
        worst, scale = max(worst, diff), max(scale, top)
    tolerance = TOLERANCE * scale
    return OnnxCheck(
        inputs=label,
        n=len(x),
        max_abs_diff=worst,
        tolerance=tolerance,
        ok=bool(worst <= tolerance),
        problem=problem,
    )


def check_inputs(spec: InputSpec, dataset: str | None, n: int = CHECK_IMAGES):
    """Inputs for the check and where they came from: the first ``n`` test images of the
    model's dataset when it is available offline, else ``n`` random-pixel images (seed 0).
    """
    from convscope.data.spec import to_batch

    if dataset:
        try:
            from convscope.data.datasets import (
                DATASETS,
                SOURCE_CACHE,
                SOURCE_DEBIAN,
                SOURCE_DIRECTORY,
                load_dataset,
            )

            if dataset in DATASETS:
                offline = (SOURCE_CACHE, SOURCE_DIRECTORY, SOURCE_DEBIAN)
                data = load_dataset(dataset, "test", sources=offline)
                count = min(n, len(data))
                images = [np.asarray(data.images[i]) for i in range(count)]
                return to_batch(images, spec), f"{dataset}:test:0-{count}"
        except ConvscopeError:
            pass
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(n, spec.height, spec.width, spec.channels), dtype=np.uint8)
    return spec.normalize(pixels), f"{n} random-pixel images"


def onnx_metadata(loaded: LoadedModel) -> dict[str, str]:
    """The ``metadata_props`` an exported file carries (all values are strings, JSON inside)."""
    from convscope import __version__

    return {
        f"{META_PREFIX}model": loaded.name,
        f"{META_PREFIX}input_spec": json.dumps(
            loaded.input_spec.to_dict(), sort_keys=True, default=str
        ),
        f"{META_PREFIX}class_names": json.dumps(
            list(loaded.class_names) if loaded.class_names else None
        ),
        f"{META_PREFIX}outputs_probabilities": json.dumps(bool(loaded.outputs_probabilities)),
        f"{META_PREFIX}dataset": json.dumps(loaded.dataset),
        f"{META_PREFIX}preprocessing": _preprocessing(loaded.input_spec),
        f"{META_PREFIX}version": __version__,
    }


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The convscope metadata of an exported file: ``model``, ``input_spec`` (an InputSpec),
    ``class_names`` (tuple or None), ``outputs_probabilities``, ``dataset``, ``version``.
    """
    from convscope.data.preprocess import InputSpec

    onnx = _require("onnx", "reading an ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ConvscopeError(f"{path}: not a readable ONNX file ({_first_line(exc)})") from exc
    props = {
        p.key.removeprefix(META_PREFIX): p.value
        for p in proto.metadata_props
        if p.key.startswith(META_PREFIX)
    }
    if "input_spec" not in props:
        raise ConvscopeError(f"{path}: an ONNX file without convscope metadata")
    names = json.loads(props.get("class_names", "null"))
    return {
        "model": props.get("model"),
        "input_spec": InputSpec.from_dict(json.loads(props["input_spec"])),
        "class_names": tuple(names) if names else None,
        "outputs_probabilities": bool(json.loads(props.get("outputs_probabilities", "false"))),
        "dataset": json.loads(props.get("dataset", "null")),
        "preprocessing": props.get("preprocessing"),
        "version": props.get("version"),
    }


# --- helpers ----------------------------------------------------------------------------


def _require(module: str, purpose: str, *, alternative: str | None = None) -> Any:
    """Import an optional package, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        also = f" (or pass {alternative})" if alternative else ""
        raise ConvscopeError(f"{purpose} needs the {module} package: {INSTALL_HINT}{also}") from exc


def _target(path: str | os.PathLike[str]) -> Path:
    """Check the output path: an ``.onnx`` name in an existing, writable folder."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".onnx":
        raise ConvscopeError(f"cannot write {path}: an ONNX file name must end in .onnx")
    return check_writable(path)


def _output_name(loaded: LoadedModel) -> str:
    """``probabilities``, ``logits`` (one row of class scores per image) or ``features``."""
    if loaded.outputs_probabilities:
        return "probabilities"
    try:
        with evaluating(loaded.module) as module:
            out = module(_dummy(loaded.input_spec))
    except Exception:  # the exporter reports a model that does not run, in one line
        return "logits"
    return "logits" if isinstance(out, torch.Tensor) and out.dim() == 2 else "features"


def _dummy(spec: InputSpec) -> torch.Tensor:
    """A batch of two normalised random-pixel images (two, so the batch axis stays dynamic)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, spec.height, spec.width, spec.channels), dtype=np.uint8)
    return spec.normalize(pixels)


def _trace(loaded: LoadedModel, tmp: Path, opset: int | None, exporter: str, output: str) -> None:
    """Run torch's exporter quietly (it prints progress), turning failures into one line."""
    module = loaded.module
    common: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": [output],
        "opset_version": opset,
    }
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1)
        options = {"dynamo": True, "dynamic_shapes": ({0: batch},), "external_data": False}
    else:
        axes = {INPUT_NAME: {0: "batch"}, output: {0: "batch"}}
        options = {"dynamo": False, "dynamic_axes": axes}
    chatter = io.StringIO()
    try:
        with (
            evaluating(module, grad=True),
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (_dummy(loaded.input_spec),), str(tmp), **common, **options)
    except Exception as exc:
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        raise ConvscopeError(
            f"{loaded.name} cannot be exported to ONNX with the {exporter} exporter "
            f"({failure_reason(exc)}); try --exporter {other}"
        ) from exc


def _check_batch_axis(loaded: LoadedModel, proto: Any, exporter: str) -> None:
    """Refuse a graph whose input lost its dynamic batch axis (the exporter specialised it)."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim if proto.graph.input else []
    if dims and not dims[0].dim_param:
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        raise ConvscopeError(
            f"{loaded.name}: the {exporter} exporter fixed the batch size to "
            f"{dims[0].dim_value} (the model turns it into a Python number, e.g. "
            f"int(x.shape[0])); make the model use x.shape[0] as is, or try --exporter {other}"
        )


def failure_reason(exc: BaseException) -> str:
    """What an exporter failure comes down to, in a few words: the operator, if it names one."""
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(_ANSI.sub("", str(current)))
        current = current.__cause__ or current.__context__
    text = "\n".join(chain)
    found = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)'", text)
    if found:
        return f"no ONNX translation for the operator {found[1]}"
    found = re.search(r"operator '([^']+)' to ONNX opset version (\d+)", text)
    if found:
        return f"the operator {found[1]} is not supported in ONNX opset {found[2]}"
    found = re.search(r"## Exception summary\s+<class '([\w.]+)'>: ([^\n]+)", text)
    if found:
        where = re.search(r"Caused by: \(([^)]+)\)", text)
        reason = f"{found[1].rsplit('.', 1)[-1]}: {found[2].strip()}"
        return _clip(reason + (f" at {where[1]}" if where else ""))
    innermost = chain[-1].strip().splitlines()
    return _clip(innermost[0] if innermost else type(exc).__name__)


def _torch_outputs(loaded: LoadedModel, x: torch.Tensor) -> list[np.ndarray]:
    """The module's outputs as numpy arrays (a tuple of outputs flattened in order)."""
    with evaluating(loaded.module) as module:
        out = module(x)
    return [t.detach().cpu().numpy() for t in _flatten(out)]


def _flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [t for v in value for t in _flatten(v)]
    return []


def _difference(got: Sequence[Any], want: Sequence[np.ndarray]) -> tuple[float, float, str | None]:
    """``(max |got - want|, max |want|, None)``, or a problem when they cannot be compared."""
    if len(got) != len(want):
        return math.inf, 1.0, f"{len(got)} outputs where PyTorch gives {len(want)}"
    worst, top = 0.0, 0.0
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g)
        if g.shape != w.shape:
            return math.inf, 1.0, f"output shape {g.shape} where PyTorch gives {w.shape}"
        if not np.array_equal(np.isfinite(g), np.isfinite(w)):
            return math.inf, 1.0, "NaN or infinity where PyTorch has none, or the reverse"
        finite = np.isfinite(w)
        if finite.any():
            worst = max(worst, float(np.abs(g[finite] - w[finite]).max()))
            top = max(top, float(np.abs(w[finite]).max()))
    return worst, top, None


def _opset(proto: Any) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _preprocessing(spec: InputSpec) -> str:
    """How to turn pixels into the input, in words (for people reading the metadata)."""
    order = f"{spec.channel_order} channel order, " if spec.channels == 3 else ""
    return (
        f"float32 N x {spec.channels} x {spec.height} x {spec.width}, {order}"
        f"pixels / 255, then (x - mean) / std with mean {list(spec.mean)} and std "
        f"{list(spec.std)}; images of another size: {spec.resize}"
        + (f" (shorter side to {spec.resize_to})" if spec.resize_to else "")
    )


def _doc(loaded: LoadedModel) -> str:
    what = "class probabilities" if loaded.outputs_probabilities else "class scores (logits)"
    return (
        f"{loaded.name} exported by convscope. Input: {_preprocessing(loaded.input_spec)}. "
        f"Output: {what}. The convscope.* metadata holds the input spec and class names as JSON."
    )


def _first_line(exc: BaseException) -> str:
    lines = _ANSI.sub("", str(exc)).strip().splitlines()
    return _clip(lines[0] if lines else type(exc).__name__)


def _clip(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
