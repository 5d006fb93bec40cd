"""A short, deterministic run of ``benchmarks/fuzz_inputs.py``'s properties, plus the
smallest inputs the long run found, kept as regression tests."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from convscope.data.spec import parse_dataset_spec
from convscope.errors import ImageError, ModelError

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_inputs.py"
_SPEC = importlib.util.spec_from_file_location("fuzz_inputs", _PATH)
fuzz = importlib.util.module_from_spec(_SPEC)
sys.modules["fuzz_inputs"] = fuzz
_SPEC.loader.exec_module(fuzz)

CASES = 50  # per family: 300 in all, a few seconds


@pytest.mark.parametrize("family", fuzz.FAMILIES, ids=lambda f: f.name)
def test_family_fails_only_with_convscope_errors(family, tmp_path):
    result = fuzz.run_family(family, CASES, case_timeout=10.0, tmp_root=tmp_path)
    assert result.cases >= CASES
    assert not result.crashes, list(result.crashes.values())
    assert not result.hangs
    assert list(tmp_path.iterdir()) == []  # every case's folder was removed


# ---------------------------------------------------------------- crashes found, now fixed


def test_spec_index_past_int_digit_limit_is_an_image_error():
    with pytest.raises(ImageError, match="too long"):
        parse_dataset_spec("mnist:test:" + "9" * 4301)


def test_keras_config_with_non_dict_layer_is_a_model_error(tmp_path):
    from convscope.models.keras.files import read_keras_file

    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"config": {"layers": [None, "x"]}}))
        archive.writestr("model.weights.h5", fuzz._weights_h5(False))
    assert read_keras_file(path).weights == {}  # no layers to map, and no AttributeError


def _checkpoint(tmp_path, **changes):
    _, payload = fuzz._checkpoint()
    payload = {**payload, **changes}
    for key, value in changes.items():
        if value is KeyError:
            del payload[key]
    path = tmp_path / "c.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "changes",
    [
        {"build": KeyError},
        {"build": None},
        {"build": {"source": "zoo"}},
        {"build": {"source": []}},
        {"build": {"source": "zoo", "name": None}},
        {"build": {"source": "zoo", "name": []}},
        {"input_spec": {"": None}},
    ],
    ids=repr,
)
def test_damaged_checkpoint_is_a_model_error(tmp_path, changes):
    from convscope.models.checkpoint import load_checkpoint

    with pytest.raises(ModelError):
        load_checkpoint(_checkpoint(tmp_path, **changes))
