"""ONNX export: outputs equal PyTorch's under onnxruntime, metadata, dynamic batch, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.errors import ConvscopeError
from convscope.export.onnx import check_onnx, export_onnx, failure_reason, read_metadata
from convscope.models.loaded import LoadedModel
from convscope.models.loading import load_model


def _run(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def _reference(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(x).numpy()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", ["lenet5", "residual", "inception", "lenet5-classic"])
def test_zoo_models_export_and_agree_with_pytorch(name: str, tmp_path: Path) -> None:
    """Plain convs, batch norm + additive shortcuts, concatenated branches, partial conv + RBF."""
    model = load_model(name, seed=0)
    path = tmp_path / f"{name}.onnx"
    result = export_onnx(model, path)
    assert _files(tmp_path) == [path.name]  # no temporary files left
    assert result.check is not None and result.check.ok and result.check.n == 8
    assert result.check.max_abs_diff < 1e-4
    assert result.exporter == "dynamo" and result.opset >= 18
    # An independent run with other inputs and batch sizes (the batch axis is dynamic).
    for n in (1, 5):
        x = torch.randn(n, *model.input_spec.shape, generator=torch.Generator().manual_seed(n))
        got, want = _run(path, x), _reference(model.module, x)
        assert got.shape == want.shape == (n, 10)
        assert np.abs(got - want).max() < 1e-4 * max(1.0, np.abs(want).max())
    proto = onnx.load(str(path))
    (graph_input,) = proto.graph.input
    assert graph_input.name == "input"
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    assert [d.dim_value for d in dims[1:]] == list(model.input_spec.shape)
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_metadata_carries_the_input_spec_and_class_names(tmp_path: Path) -> None:
    model = load_model("residual", seed=0)
    path = tmp_path / "residual.onnx"
    export_onnx(model, path, check=False)
    meta = read_metadata(path)
    assert meta["model"] == "residual"
    assert meta["input_spec"] == model.input_spec
    assert meta["input_spec"].to_dict() == model.input_spec.to_dict()
    assert meta["class_names"] == model.class_names
    assert meta["class_names"][0] == "T-shirt/top"
    assert meta["outputs_probabilities"] is False
    assert meta["dataset"] == "fashion-mnist"
    # onnxruntime sees the same metadata (what a deployment reads)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    custom = session.get_modelmeta().custom_metadata_map
    assert InputSpec.from_dict(__import__("json").loads(custom["convscope.input_spec"])) == (
        model.input_spec
    )


def test_bgr_spec_and_probability_output(tmp_path: Path) -> None:
    """A hand-set BGR spec survives, and a softmax model's output is named for what it is."""
    module = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Softmax(1)
    )
    spec = InputSpec(3, 16, 16, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), channel_order="BGR")
    loaded = LoadedModel(
        module=module.eval(),
        name="tiny-bgr",
        input_spec=spec,
        class_names=("a", "b", "c", "d"),
        outputs_probabilities=True,
    )
    path = tmp_path / "tiny.onnx"
    result = export_onnx(loaded, path)
    assert result.output_name == "probabilities"
    assert result.check is not None and result.check.inputs == "8 random-pixel images"
    meta = read_metadata(path)
    assert meta["input_spec"].channel_order == "BGR"
    assert meta["input_spec"].mean == (0.4, 0.5, 0.6)
    assert meta["class_names"] == ("a", "b", "c", "d") and meta["outputs_probabilities"]
    out = _run(path, torch.rand(3, 3, 16, 16))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_torchscript_exporter(tmp_path: Path) -> None:
    model = load_model("residual", seed=1)
    result = export_onnx(model, tmp_path / "r.onnx", exporter="torchscript", opset=17)
    assert result.exporter == "torchscript" and result.opset == 17
    assert result.check is not None and result.check.max_abs_diff < 1e-4


def test_check_uses_the_images_given(tmp_path: Path) -> None:
    model = load_model("lenet5", seed=0)
    path = tmp_path / "lenet5.onnx"
    export_onnx(model, path, check=False)
    x = torch.rand(3, 1, 28, 28)
    check = check_onnx(model, path, x, inputs_label="three images")
    assert (check.inputs, check.n, check.ok) == ("three images", 3, True)
    assert check.max_abs_diff == pytest.approx(
        np.abs(_run(path, x) - _reference(model.module, x)).max(), abs=1e-6
    )
    with pytest.raises(ConvscopeError, match="shape"):
        check_onnx(model, path, torch.rand(3, 1, 32, 32))


class Eigen(nn.Module):
    """An operator ONNX has no translation for (eigenvalues)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvals(x.flatten(1)[:, :4].reshape(-1, 2, 2)).real


class Branchy(nn.Module):
    """A forward that branches on tensor values: torch.export cannot capture it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, : int(x.sum().item() > 0) + 1]


class FixedBatch(nn.Module):
    """A reshape that makes the batch size a Python number: a tracer bakes it into the graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(int(x.shape[0]), -1)


def _custom(module: nn.Module) -> LoadedModel:
    return LoadedModel(
        module=module.eval(), name=type(module).__name__, input_spec=InputSpec(1, 8, 8)
    )


@pytest.mark.parametrize(
    ("exporter", "op"), [("dynamo", "aten.linalg_eig"), ("torchscript", "aten::linalg_eigvals")]
)
def test_an_unsupported_operator_is_named_in_one_line(
    exporter: str, op: str, tmp_path: Path
) -> None:
    with pytest.raises(ConvscopeError) as info:
        export_onnx(_custom(Eigen()), tmp_path / "eig.onnx", exporter=exporter)
    message = str(info.value)
    assert "\n" not in message and op in message and "Eigen" in message
    assert "--exporter" in message
    assert _files(tmp_path) == []


def test_data_dependent_branches_need_the_torchscript_exporter(tmp_path: Path) -> None:
    with pytest.raises(ConvscopeError, match=r"data-dependent.*--exporter torchscript") as info:
        export_onnx(_custom(Branchy()), tmp_path / "b.onnx")
    assert "\n" not in str(info.value)
    assert _files(tmp_path) == []


def test_a_file_that_disagrees_with_pytorch_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "fixed.onnx"
    path.write_bytes(b"an earlier file")
    with pytest.raises(
        ConvscopeError, match=r"shape \(2, 256\) where PyTorch gives \(8, 64\)"
    ) as info:
        export_onnx(_custom(FixedBatch()), path, exporter="torchscript")
    assert "\n" not in str(info.value)
    assert path.read_bytes() == b"an earlier file" and _files(tmp_path) == ["fixed.onnx"]
    # torch.export specialises the batch size instead of tracing it: refused as well
    with pytest.raises(ConvscopeError, match=r"fixed the batch size to 2.*int\(x.shape\[0\]\)"):
        export_onnx(_custom(FixedBatch()), path)
    assert path.read_bytes() == b"an earlier file" and _files(tmp_path) == ["fixed.onnx"]
    result = export_onnx(_custom(FixedBatch()), path, exporter="torchscript", check=False)
    assert result.check is None and path.stat().st_size > 100


def test_bad_paths(tmp_path: Path) -> None:
    model = load_model("lenet5")
    with pytest.raises(ConvscopeError, match=r"must end in \.onnx"):
        export_onnx(model, tmp_path / "model.pt")
    with pytest.raises(ConvscopeError, match="does not exist"):
        export_onnx(model, tmp_path / "missing" / "model.onnx")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConvscopeError, match="is a file, not a folder"):
        export_onnx(model, tmp_path / "file" / "model.onnx")
    with pytest.raises(ConvscopeError, match="unknown ONNX exporter"):
        export_onnx(model, tmp_path / "m.onnx", exporter="jit")
    with pytest.raises(ConvscopeError, match="--opset must be from 7 to"):
        export_onnx(model, tmp_path / "m.onnx", opset=99)


def test_missing_packages_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_model("lenet5")
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "onnxruntime", None)
        with pytest.raises(ConvscopeError, match=r"onnxruntime.*convscope\[onnx\].*--no-check"):
            export_onnx(model, tmp_path / "m.onnx")
        assert _files(tmp_path) == []
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "onnx", None)
        with pytest.raises(ConvscopeError, match=r"pip install 'convscope\[onnx\]'"):
            export_onnx(model, tmp_path / "m.onnx")


def test_failure_reason_reads_the_exception_chain() -> None:
    inner = RuntimeError("\x1b[96mline one\x1b[0m\nline two")
    outer = ValueError("wrapper")
    outer.__cause__ = inner
    assert failure_reason(outer) == "line one"


def test_a_feature_extractor_names_its_output_features(tmp_path: Path) -> None:
    stem = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    loaded = LoadedModel(module=stem.eval(), name="stem", input_spec=InputSpec(1, 8, 8))
    result = export_onnx(loaded, tmp_path / "stem.onnx")
    assert result.output_name == "features" and result.check is not None and result.check.ok
