"""Loading models from every MODEL form, weights files and checkpoints; clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from convscope.errors import ModelError
from convscope.models.checkpoint import load_checkpoint, save_checkpoint
from convscope.models.loading import load_model


def test_torchvision_model_with_weights_file(tmp_path: Path) -> None:
    source = load_model("torchvision:resnet18").module
    with torch.no_grad():
        for p in source.parameters():
            p.uniform_(-0.1, 0.1)
    weights = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), weights)
    loaded = load_model("torchvision:resnet18", weights=weights)
    x = torch.randn(1, 3, 64, 64)
    source.eval()
    torch.testing.assert_close(loaded.module(x), source(x))
    assert loaded.input_spec.shape == (3, 224, 224)
    assert loaded.class_names is not None and len(loaded.class_names) == 1000
    assert loaded.class_names[0] == "tench"


def test_resnet50_zoo_entry_loads_a_torchvision_state_dict(tmp_path: Path) -> None:
    module = load_model("resnet50").module
    weights = tmp_path / "r50.pth"
    # DDP-wrapped checkpoints prefix every key with "module." inside {"state_dict": ...}.
    torch.save({"state_dict": {f"module.{k}": v for k, v in module.state_dict().items()}}, weights)
    loaded = load_model("resnet50", weights=weights)
    torch.testing.assert_close(loaded.module.conv1.weight, module.conv1.weight)
    assert tuple(loaded.module.conv1.weight.shape) == (64, 3, 7, 7)


def test_weights_that_do_not_fit_name_the_layer(tmp_path: Path) -> None:
    weights = tmp_path / "lenet5.pth"
    torch.save(load_model("lenet5").module.state_dict(), weights)
    with pytest.raises(ModelError, match=r"conv2d_1\.weight is"):
        load_model("lenet", weights=weights)


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    module = load_model("lenet5").module
    with torch.no_grad():
        module.conv2d_2.weight[0, 0, 0, 0] = float("nan")
    weights = tmp_path / "nan.pth"
    torch.save(module.state_dict(), weights)
    with pytest.raises(ModelError, match=r"conv2d_2\.weight contain NaN"):
        load_model("lenet5", weights=weights)


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04garbage"])
def test_corrupt_files_give_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.ckpt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"broken\.ckpt"):
        load_model(str(path))


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    save_checkpoint(load_model("lenet5"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"model\.ckpt"):
        load_model(str(path))


def test_checkpoint_round_trip_keeps_everything(tmp_path: Path) -> None:
    model = load_model("lenet5-classic")
    model.class_names = tuple(f"digit {i}" for i in range(10))
    path = save_checkpoint(model, tmp_path / "sub" / "classic.ckpt", extra={"note": "x"})
    assert not [p for p in path.parent.iterdir() if p.name != "classic.ckpt"]  # no temp files
    loaded = load_model(str(path))
    assert loaded.name == "lenet5-classic"
    assert loaded.input_spec == model.input_spec
    assert loaded.class_names == model.class_names
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(loaded.module(x), model.module.eval()(x))


def test_bare_state_dict_is_not_mistaken_for_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(load_model("lenet").module.state_dict(), path)
    with pytest.raises(ModelError, match="--weights"):
        load_checkpoint(path)


def test_user_file_factory(tmp_path: Path) -> None:
    source = tmp_path / "my_net.py"
    source.write_text(
        textwrap.dedent("""
        from torch import nn

        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))

        def with_spec():
            net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
            net.input_spec = {"channels": 1, "height": 8, "width": 8}
            net.class_names = ["a", "b", "c"]
            return net
    """)
    )
    with pytest.raises(ModelError, match="--input-shape"):
        load_model(f"{source}:build")
    model = load_model(f"{source}:build", input_shape=(3, 16, 16))
    assert model.input_spec.shape == (3, 16, 16)
    declared = load_model(f"{source}:with_spec")
    assert declared.input_spec.shape == (1, 8, 8) and declared.class_names == ("a", "b", "c")
    with pytest.raises(ModelError, match="did you mean build"):
        load_model(f"{source}:buidl")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lenet6", "did you mean lenet"),
        ("torchvision:resnet5", "did you mean resnet50"),
        ("missing/model.ckpt", "no such file"),
        ("no_such_file.py:build", "no such Python file"),
    ],
)
def test_unknown_models(spec: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_model(spec)


def test_timm_models_or_a_helpful_install_hint() -> None:
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError, match=r"pip install 'convscope\[timm\]'"):
            load_model("timm:resnet18")
    else:
        model = load_model("timm:resnet18")
        assert model.input_spec.shape == (3, 224, 224)


def test_a_py_file_without_its_function_and_a_folder_say_what_to_give(tmp_path: Path) -> None:
    source = tmp_path / "net.py"
    source.write_text("def build():\n    return None\n")
    with pytest.raises(ModelError, match=r"FILE\.py:FUNCTION \(e\.g\. .*net\.py:build\)"):
        load_model(str(source))
    with pytest.raises(ModelError, match="is a folder; give a model file"):
        load_model(str(tmp_path))


def test_summary_arguments_are_checked() -> None:
    from convscope.errors import ConvscopeError
    from convscope.probe.summary import summarize

    with pytest.raises(ConvscopeError, match="depth must be at least 1"):
        summarize(load_model("lenet5"), depth=0)
    with pytest.raises(ConvscopeError, match="needs input_shape"):
        summarize(torch.nn.Conv2d(1, 2, 3))
