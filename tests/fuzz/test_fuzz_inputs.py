"""A short, deterministic run of ``benchmarks/fuzz_inputs.py``'s properties, plus the
smallest inputs the long run found, kept as regression tests."""

from __future__ import annotations

import importlib.util
import io
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

CASES = 50  # per family: 400 in all (seeded: hypothesis derandomized), about 15 s


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


# The smallest inputs of the crashes the long run found in the h5 family, in its own terms
# (an edit of a Keras-made fixture, see fuzz_inputs.h5_files); each is now a ModelError.
CONV1, POOL2 = ("config", "layers", 0, "config"), ("config", "layers", 3, "config")
H5_CRASHES = {
    # MemoryError in files._h5_layer / files._numbered: a dataset declaring 4 TiB, storing none
    "huge-legacy-weight": [
        ("dataset", "model_weights/conv2d_1/conv2d_1/bias:0", "huge", (1 << 40,))
    ],
    "huge-keras3-weight": [("dataset", "layers/dense/vars/0", "huge", (1 << 40,))],
    # UnicodeDecodeError in files._read_h5: keras_version bytes that are not UTF-8
    "keras-version-not-utf8": [("attr", "/", "keras_version", b"\xff")],
    # AttributeError / TypeError in config._sequential and config._layer_spec
    "config-body-int": [("config", ((("config",), 0),), "str")],
    "layers-int": [("config", ((("config", "layers"), 7),), "str")],
    "layer-config-int": [("config", ((CONV1, 7),), "str")],
    # ValueError / TypeError / ZeroDivisionError while building a layer (layers.py, modules.py)
    "filters-text": [("config", (((*CONV1, "filters"), "same"),), "str")],
    "groups-negative": [("config", (((*CONV1, "groups"), -1),), "str")],
    "kernel-size-one-number": [("config", (((*CONV1, "kernel_size"), [5]),), "str")],
    "kernel-size-null": [("config", (((*CONV1, "kernel_size"), [None, 5]),), "str")],
    "strides-zero": [("config", (((*CONV1, "strides"), 0),), "str")],
    # IndexError in weights.load_layer_weights: a Dense kernel whose rows do not match the
    # flatten before it, and a scalar where a Dense kernel should be
    "flatten-size-changed": [("config", (((*POOL2, "strides"), 1),), "str")],
    "dense-kernel-scalar": [("dataset", "model_weights/dense_1/dense_1/kernel:0", "scalar", None)],
}


@pytest.mark.parametrize("edits", H5_CRASHES.values(), ids=H5_CRASHES.keys())
def test_h5_crash_is_now_a_model_error(tmp_path, edits):
    layout = "keras-zip" if str(edits[0][1]).startswith("layers/") else "keras2"
    with pytest.raises(ModelError):
        fuzz.h5_target(("edits", layout, edits), tmp_path)


def test_hdf5_global_heap_that_would_hang_is_refused(tmp_path):
    """A zero-size free-space object in a global heap: HDF5 2.0 loops forever reading it."""
    import faulthandler

    from convscope.models.keras.files import read_keras_file

    data = bytearray((fuzz.FIXTURES / "lenet.h5").read_bytes())
    free = data.find(b"GCOL") + 5136  # the collection's free-space object (index 0)
    assert data[free : free + 2] == b"\0\0"
    data[free + 8 : free + 16] = bytes(8)  # its size: 0
    path = tmp_path / "m.h5"
    path.write_bytes(data)
    faulthandler.dump_traceback_later(60, exit=True)  # a regression would hang, not fail
    try:
        with pytest.raises(ModelError, match="global heap"):
            read_keras_file(path)
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_png_with_short_ihdr_is_an_image_error(tmp_path):
    """ValueError "Truncated IHDR chunk" from Image.open in images.decode_image."""
    from convscope.data.images import read_pixels

    path = tmp_path / "x.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0cIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00"
        b"\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00"
        b"IEND\xaeB`\x82"
    )
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_pixels(path)


def test_damaged_tiff_is_one_line_on_stderr(tmp_path, capfd):
    """libtiff printed its own lines (TIFFReadDirectory: ...) on fd 2 before ours."""
    from PIL import Image

    from convscope.cli.app import main

    buffer = io.BytesIO()
    Image.new("L", (12, 12)).save(buffer, format="TIFF", compression="tiff_lzw")
    path = tmp_path / "x.tif"
    path.write_bytes(buffer.getvalue()[:-20])
    assert main(["predict", "lenet5", "--image", str(path)]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error: "), lines


LONG = "x" * 300  # past any file name's length: Path.exists/is_dir raise ENAMETOOLONG


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "lenet5", "--image", "mnist:test:" + "9" * 245],  # data/spec.py
        ["predict", "lenet5", "--image", LONG + ".png"],  # data/stream.py
        ["data", "show", "mnist:" + LONG, "--json"],  # data/grid.py
        ["summary", LONG],  # models/loading.py
        ["summary", LONG + ".py:build"],
        ["summary", LONG + ".keras"],
        ["predict", "lenet5", "--weights", LONG + ".pt", "--image", "mnist:test:0"],
        ["predict", "lenet5", "--weights", LONG, "--image", "mnist:test:0"],  # pretrained.py
    ],
    ids=["spec-index", "image-file", "grid-spec", "model", "factory", "keras", "weights", "name"],
)
def test_name_too_long_for_a_file_is_one_error_line(capsys, argv):
    from tests.cli import assert_user_error, run

    assert_user_error(run(capsys, *argv))


def test_features_note_does_not_precede_the_error_line(capsys, tmp_path):
    """cli family: ``--batch-size`` without ``--npy`` printed a note, then the image failed."""
    from tests.cli import assert_user_error, run

    image = tmp_path / "x.bmp"
    image.write_bytes(b"BM")
    argv = ["features", "lenet5", "--layers", "conv2d_1", "--image", str(image)]
    assert_user_error(run(capsys, *argv, "--batch-size", "1"), "x.bmp")
