"""Pretrained weights by name and URL, through each library's own cache; clear errors.

No test reaches a network: each fills the cache (``$TORCH_HOME/hub/checkpoints``, the
Hugging Face cache) with a file it makes, or serves one from 127.0.0.1. Where a test
needs a download to fail, ``torch.hub.download_url_to_file`` raises what urllib raises
with no route (the only thing replaced: the network itself, which this machine lacks).
"""

from __future__ import annotations

import json
import threading
import urllib.error
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import torch.hub
import torchvision.models as tvm

from convscope.errors import ModelError
from convscope.models.checkpoint import load_checkpoint, save_checkpoint
from convscope.models.loading import load_model
from convscope.models.torchvision_models import torchvision_weights
from tests.cli import assert_user_error, run


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``TORCH_HOME``; any real download attempt fails the test at once."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a download of {url} was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return home


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads fail as urllib fails on a machine without a route."""

    def unreachable(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)


def cache_file(home: Path, url: str) -> Path:
    path = home / "hub" / "checkpoints" / Path(url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def seeded_state(build, seed: int = 1, **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build(weights=None, **kwargs).state_dict()


def assert_same_tensors(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = module.state_dict()
    assert list(loaded) == list(state)
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


# --------------------------------------------------------------------------- torchvision


def test_imagenet_weights_are_read_from_the_torch_hub_cache(torch_home: Path) -> None:
    weights = tvm.ResNet18_Weights.DEFAULT
    state = seeded_state(tvm.resnet18)
    torch.save(state, cache_file(torch_home, weights.url))
    with pytest.warns(UserWarning, match="does not match the sha256 its name carries"):
        model = load_model("torchvision:resnet18", weights="imagenet")
    assert_same_tensors(model.module, state)
    # a file made here is not torchvision's: used, but never passed off as its weights
    assert model.weights == (
        "imagenet (IMAGENET1K_V1, unverified: resnet18-f37072fd.pth does not match its sha256)"
    )
    assert model.class_names is not None and model.class_names[281] == "tabby"
    assert model.input_spec.resize_to == 256 and model.input_spec.height == 224
    assert not model.module.training


def test_resnet50_takes_a_weights_name_and_its_input_spec(torch_home: Path) -> None:
    weights = tvm.ResNet50_Weights.IMAGENET1K_V2
    state = seeded_state(tvm.resnet50, seed=2)
    torch.save(state, cache_file(torch_home, weights.url))
    for name in ("imagenet", "IMAGENET1K_V2", "imagenet1k_v2", "ResNet50_Weights.IMAGENET1K_V2"):
        assert torchvision_weights("resnet50", name) is weights
    with pytest.warns(UserWarning, match="not the published IMAGENET1K_V2 weights"):
        model = load_model("resnet50", weights="IMAGENET1K_V2")
    assert model.weights.startswith("imagenet (IMAGENET1K_V2, unverified")
    assert model.input_spec.resize_to == 232  # V2's own transforms, not V1's 256
    assert_same_tensors(model.module, state)


def test_checkpoint_and_summary_record_the_weights(
    torch_home: Path, tmp_path: Path, capsys
) -> None:
    weights = tvm.ResNet18_Weights.DEFAULT
    state = seeded_state(tvm.resnet18)
    torch.save(state, cache_file(torch_home, weights.url))
    with pytest.warns(UserWarning):
        loaded = load_model("torchvision:resnet18", weights="imagenet")
    again = load_checkpoint(save_checkpoint(loaded, tmp_path / "r18.ckpt"))
    assert again.weights == loaded.weights
    assert again.weights.startswith("imagenet (IMAGENET1K_V1")
    assert_same_tensors(again.module, state)
    status, out, err = run(
        capsys, "summary", "torchvision:resnet18", "--weights", "imagenet", "--json"
    )
    assert status == 0, err
    assert json.loads(out)["weights"] == again.weights
    assert "convscope: warning: " in err and "does not match the sha256" in err


def test_googlenet_weights_rebuild_from_a_checkpoint(torch_home: Path, tmp_path: Path) -> None:
    """torchvision builds GoogLeNet differently for its weights; the recipe keeps that."""
    weights = tvm.GoogLeNet_Weights.DEFAULT
    state = seeded_state(tvm.googlenet, aux_logits=True, init_weights=False)
    torch.save(state, cache_file(torch_home, weights.url))
    model = load_model("torchvision:googlenet", weights="imagenet")
    assert model.module.transform_input and model.module.aux1 is None
    x = torch.randn(1, 3, 224, 224)
    again = load_checkpoint(save_checkpoint(model, tmp_path / "g.ckpt"))
    with torch.no_grad():
        assert torch.equal(model.module(x), again.module(x))


def test_offline_with_nothing_cached_names_the_url_and_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    offline(monkeypatch)
    url = tvm.ResNet50_Weights.IMAGENET1K_V2.url
    path = tmp_path / "th" / "hub" / "checkpoints" / Path(url).name
    with pytest.raises(ModelError) as caught:
        load_model("resnet50", weights="imagenet")
    message = str(caught.value)
    assert url in message and str(path) in message and "\n" not in message
    assert not path.exists()
    assert_user_error(run(capsys, "layers", "resnet50", "--weights", "imagenet"), url, str(path))


def test_unknown_weights_name_lists_the_valid_ones(torch_home: Path, capsys) -> None:
    with pytest.raises(ModelError, match=r"IMAGENET1K_V1, IMAGENET1K_V2.*did you mean imagenet"):
        load_model("resnet50", weights="imagenett")
    assert_user_error(
        run(capsys, "summary", "torchvision:resnet18", "--weights", "IMAGENET1K_V9"),
        "IMAGENET1K_V1",
    )


def test_zoo_model_without_pretrained_weights_says_which_have_them(capsys) -> None:
    assert_user_error(
        run(capsys, "summary", "lenet", "--weights", "imagenet"),
        "lenet has no pretrained weights",
        "resnet50, efficientnet-lite0, torchvision:NAME and timm:NAME",
    )


def test_a_missing_weights_file_is_still_a_file(capsys) -> None:
    assert_user_error(run(capsys, "summary", "lenet", "--weights", "no-such.pth"), "no such file")


# --------------------------------------------------------------------------- --weights URL


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a folder; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def test_weights_url_downloads_into_the_torch_hub_cache(
    http_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    base, folder = http_server
    home = tmp_path / "th"
    monkeypatch.setenv("TORCH_HOME", str(home))
    torch.manual_seed(3)
    state = load_model("lenet5", seed=3).module.state_dict()
    torch.save(state, folder / "lenet5-trained.pth")
    url = f"{base}/lenet5-trained.pth"
    model = load_model("lenet5", weights=url)
    assert_same_tensors(model.module, state)
    assert model.weights == f"url {url}"
    assert (home / "hub" / "checkpoints" / "lenet5-trained.pth").is_file()
    (folder / "lenet5-trained.pth").unlink()  # the second load is served by the cache
    status, out, err = run(capsys, "summary", "lenet5", "--weights", url, "--json")
    assert status == 0, err
    assert json.loads(out)["weights"] == f"url {url}"


def test_weights_url_that_cannot_be_reached_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import socket

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with socket.socket() as sock:  # a port nobody listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/w.pth"
    path = tmp_path / "th" / "hub" / "checkpoints" / "w.pth"
    assert_user_error(run(capsys, "summary", "lenet5", "--weights", url), url, str(path))


def test_weights_url_of_a_missing_file_is_one_line(
    http_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    base, _ = http_server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert_user_error(
        run(capsys, "summary", "lenet5", "--weights", f"{base}/nothing.pth"),
        "HTTP 404",
        "check the URL",
    )


# --------------------------------------------------------------------------- timm


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, offline (huggingface_hub fails at once, no retries)."""
    constants = pytest.importorskip("huggingface_hub.constants")
    cache = tmp_path / "hf-hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def put_in_hf_cache(cache: Path, repo: str, filename: str) -> Path:
    """The path where huggingface_hub keeps ``filename`` of ``repo`` at revision main."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    path = folder / "snapshots" / revision / filename
    path.parent.mkdir(parents=True)
    return path


def test_timm_imagenet_weights_from_the_hugging_face_cache(
    torch_home: Path, hf_cache: Path
) -> None:
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(4)
    state = timm.create_model("efficientnet_lite0").state_dict()
    path = put_in_hf_cache(hf_cache, "timm/efficientnet_lite0.ra_in1k", "model.safetensors")
    save_file(state, str(path))
    model = load_model("timm:efficientnet_lite0", weights="imagenet")
    assert_same_tensors(model.module, state)
    assert model.weights == "imagenet (efficientnet_lite0.ra_in1k)"
    assert model.class_names is not None and len(model.class_names) == 1000
    assert model.build["name"] == "efficientnet_lite0.ra_in1k"


def test_timm_offline_with_nothing_cached_names_the_url_and_the_path(
    tmp_path: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    pytest.importorskip("timm")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    url = "https://huggingface.co/timm/efficientnet_lite0.ra_in1k/resolve/main/model.safetensors"
    checkpoints = tmp_path / "th" / "hub" / "checkpoints"
    drop_in = checkpoints / "efficientnet_lite0.ra_in1k.safetensors"  # what the URL serves
    result = run(capsys, "summary", "timm:efficientnet_lite0", "--weights", "imagenet")
    assert_user_error(result, url, str(drop_in))
    torch.manual_seed(5)
    import timm
    from safetensors.torch import save_file

    state = timm.create_model("efficientnet_lite0").state_dict()
    checkpoints.mkdir(parents=True)
    save_file(state, drop_in)  # the file downloaded elsewhere, put where the line said
    assert_same_tensors(load_model("timm:efficientnet_lite0", weights="imagenet").module, state)
    drop_in.unlink()
    torch.save(state, checkpoints / "efficientnet_lite0_ra-37913777.pth")  # timm's old .pth
    assert_same_tensors(load_model("timm:efficientnet_lite0", weights="imagenet").module, state)


def test_timm_unknown_tag_lists_the_tags(hf_cache: Path) -> None:
    pytest.importorskip("timm")
    with pytest.raises(ModelError, match=r"ra_in1k.*did you mean ra_in1k"):
        load_model("timm:efficientnet_lite0", weights="ra_in1kk")


def test_a_cached_file_is_checked_against_the_hash_in_its_name(tmp_path: Path) -> None:
    import hashlib

    from convscope.models.pretrained import cached_hash_matches

    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()
    good, bad, plain = (tmp_path / f"net-{digest[:8]}.pth", tmp_path / "net-00000000.pth",
                        tmp_path / "net.pth")  # fmt: skip
    for path in (good, bad, plain):
        path.write_bytes(data)
    assert cached_hash_matches(good) is True
    assert cached_hash_matches(bad) is False
    assert cached_hash_matches(plain) is None
