"""Where weights came from: seeded initialisation, the "untrained" label, ``run:ID@EPOCH``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convscope.errors import ModelError
from convscope.models.checkpoint import load_checkpoint, save_checkpoint
from convscope.models.loading import load_model
from convscope.models.provenance import is_untrained, model_title, untrained_caption
from tests.cli import assert_user_error, run


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_untrained_models_are_seeded_by_default_and_say_so() -> None:
    before = torch.random.get_rng_state()
    first, second = load_model("lenet5"), load_model("lenet5")
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
    assert _same_weights(first.module, second.module)
    assert first.weights == "random init (seed 0)" and first.untrained
    other = load_model("lenet5", seed=1)
    assert not _same_weights(first.module, other.module)
    assert other.weights == "random init (seed 1)"
    assert load_model("lenet5", seed=None).weights == "random init (unseeded)"


def test_bad_seeds_are_refused() -> None:
    for seed in (-1, 1.5, True, 2**32):
        with pytest.raises(ModelError, match="seed must be a whole number"):
            load_model("lenet5", seed=seed)  # type: ignore[arg-type]


def test_weights_from_a_file_and_a_checkpoint_are_named(tmp_path: Path) -> None:
    model = load_model("lenet5", seed=3)
    torch.save(model.module.state_dict(), tmp_path / "w.pth")
    loaded = load_model("lenet5", weights=tmp_path / "w.pth")
    assert loaded.weights == "file w.pth" and not loaded.untrained
    assert _same_weights(loaded.module, model.module)
    save_checkpoint(loaded, tmp_path / "m.ckpt")
    assert load_checkpoint(tmp_path / "m.ckpt").weights == "file w.pth"


def test_titles_flag_untrained_weights_only() -> None:
    assert model_title("resnet50", "random init (seed 0)") == (
        "resnet50 (untrained: random init, seed 0)"
    )
    assert model_title("resnet50", "file r50.pth") == "resnet50 (file r50.pth)"
    assert model_title("lenet5", "run ab12 epoch 0 (before the first update)") == (
        "lenet5 (run ab12 epoch 0, before the first update)"
    )
    assert model_title("Sequential", "") == "Sequential"
    assert is_untrained("random init (unseeded)") and not is_untrained("run ab12 epoch 3")
    assert "Untrained" in untrained_caption("random init (seed 0)")
    assert untrained_caption("imagenet (IMAGENET1K_V2)") == ""


def test_run_at_epoch_loads_that_epochs_checkpoint(recorded_runs) -> None:
    root, ids = recorded_runs
    run_id = ids[0]  # sequential, 2 epochs, seed 0
    start = load_model(f"run:{run_id}@0", store=root)
    end = load_model(f"run:{run_id}@2", store=root)
    latest = load_model(f"run:{run_id}", store=root)
    assert start.weights == f"run {run_id} epoch 0 (before the first update)"
    assert end.weights == latest.weights == f"run {run_id} epoch 2"
    assert not start.untrained  # a recorded state, named by its epoch
    assert _same_weights(end.module, latest.module)
    assert not _same_weights(start.module, end.module)
    # epoch 0 is the initialisation the run started from: the same seed builds it again
    assert _same_weights(start.module, load_model("sequential", seed=0).module)


def test_an_epoch_the_run_lacks_lists_the_ones_it_has(recorded_runs) -> None:
    root, ids = recorded_runs
    with pytest.raises(ModelError, match=r"no checkpoint of epoch 7; it has epochs 0-2$"):
        load_model(f"run:{ids[0]}@7", store=root)
    with pytest.raises(ModelError, match="the epoch after @ must be a whole number"):
        load_model(f"run:{ids[0]}@last", store=root)
    with pytest.raises(ModelError, match="give the epoch after @"):
        load_model(f"run:{ids[0]}@", store=root)
    from convscope.store.errors import StoreError

    with pytest.raises(StoreError, match=f"no run 'deadbeef' in the store {root}"):
        load_model("run:deadbeef@1", store=root)


def test_cli_run_at_epoch_and_untrained_json(recorded_runs, capsys) -> None:
    root, ids = recorded_runs
    common = ("--image", "fashion-mnist:test:0", "--store", str(root), "--json")
    status, out, err = run(capsys, "predict", f"run:{ids[1]}@0", *common)
    assert status == 0, err
    assert json.loads(out)["weights"] == f"run {ids[1]} epoch 0 (before the first update)"
    status, out, err = run(capsys, "predict", "lenet5", "--image", "mnist:test:0", "--json")
    assert status == 0, err
    assert json.loads(out)["weights"] == "random init (seed 0)"
    status, out, _ = run(capsys, "summary", "lenet5", "--seed", "4", "--json")
    assert json.loads(out)["weights"] == "random init (seed 4)"
    assert_user_error(
        run(capsys, "predict", f"run:{ids[1]}@9", *common), "no checkpoint of epoch 9", "0-2"
    )
    for bad in ("-1", "4294967296", "99999999999999999999"):
        assert_user_error(run(capsys, "summary", "lenet5", "--seed", bad), "from 0 to 2**32 - 1")
    for url in ("ftp://example.com/r50.pth", "file:///tmp/r18.pth"):
        assert_user_error(
            run(capsys, "summary", "resnet50", "--weights", url), "unsupported URL scheme"
        )


def test_cli_kernels_of_an_untrained_model_repeat(tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        status, _, err = run(
            capsys,
            "kernels",
            "lenet5",
            "--layer",
            "conv2d_1",
            "--npy",
            str(tmp_path / f"{name}.npy"),
        )
        assert status == 0, err
    import numpy as np

    first, second = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert np.array_equal(first, second)
    status, out, _ = run(capsys, "kernels", "lenet5", "--layer", "conv2d_1", "--json")
    assert json.loads(out)["weights"] == "random init (seed 0)"
