"""Models given with ``convscope serve --model``: ``MODEL=WEIGHTS``, names, and a file
that does not load stopping the server at start with its one line."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
import torch

import convscope
from convscope.errors import ConvscopeError
from convscope.serve.modelpool import served_names, split_weights
from convscope.serve.state import ServeConfig
from tests.cli import assert_user_error, run
from tests.serve.conftest import make_client


def test_model_equals_weights_is_split_unless_it_is_a_file(tmp_path: Path) -> None:
    assert split_weights("resnet50=imagenet") == ("resnet50", "imagenet")
    assert split_weights("lenet5=/w/a.pth") == ("lenet5", "/w/a.pth")
    assert split_weights("lenet5") == ("lenet5", None)
    odd = tmp_path / "a=b.ckpt"
    odd.write_bytes(b"")
    assert split_weights(str(odd)) == (str(odd), None)  # an existing file is a file
    for bad in ("=imagenet", "resnet50="):
        with pytest.raises(ConvscopeError, match="MODEL=WEIGHTS"):
            split_weights(bad)
    names = served_names(["resnet50=imagenet", "lenet5=/w/a.pth", "/x/lenet.ckpt"])
    assert names == {
        "resnet50=imagenet": "resnet50=imagenet",
        "lenet5=a.pth": "lenet5=/w/a.pth",
        "lenet.ckpt": "/x/lenet.ckpt",
    }


def test_a_zoo_model_with_weights_from_a_file_is_served_with_them(tmp_path: Path) -> None:
    trained = convscope.load_model("lenet5", seed=7)  # other weights than the zoo's seed 0
    weights = tmp_path / "w.pth"
    torch.save(trained.module.state_dict(), weights)
    config = ServeConfig(store=tmp_path / "runs", models=(f"lenet5={weights}",))
    with make_client(config) as client:
        listed = {m["name"]: m for m in client.get("/api/models").json()}
        assert "lenet5=w.pth" in listed and "w.pth" in listed["lenet5=w.pth"]["description"]
        info = client.get(f"/api/models/{quote('lenet5=w.pth')}/info").json()
        assert info["weights"] == "file w.pth"
        kernels = client.get(
            f"/api/models/{quote('lenet5=w.pth')}/kernels/tiles?layer=conv2d_1"
        ).json()
        expected = convscope.kernels(trained, "conv2d_1").health().to_dict()
        assert kernels["health"] == expected
        zoo = client.get("/api/models/lenet5/kernels/tiles?layer=conv2d_1").json()
        assert zoo["health"] != expected  # the plain zoo name keeps its own weights


def test_a_model_file_that_does_not_load_stops_the_server_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    result = run(capsys, "serve", "--port", "0", "--store", str(tmp_path), "--model", str(bogus))
    assert_user_error(result, f"--model {bogus}:")
    result = run(capsys, "serve", "--port", "0", "--model", "lenet5=nosuch.pth")
    assert_user_error(result, "--model lenet5=nosuch.pth:")
    assert [p.name for p in tmp_path.iterdir()] == ["bogus.ckpt"]  # nothing written
