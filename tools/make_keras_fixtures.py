"""Make the small Keras fixture models that tests/models/test_keras.py compares against.

Run it with a throwaway Keras venv, never convscope's own (TensorFlow is ~1.5 GB)::

    python3 -m venv /tmp/kerasenv
    /tmp/kerasenv/bin/pip install tensorflow-cpu keras h5py
    /tmp/kerasenv/bin/python tools/make_keras_fixtures.py [--out tests/fixtures/keras]

For each model it writes ``NAME.keras`` (Keras 3 zip), ``NAME.h5`` (what Keras 3's
``model.save("x.h5")`` writes), ``NAME.keras2.h5`` (the same weights rewritten in the
Keras 2 layout: ``:0`` suffixes, no model-name level, a Keras 2 style config) and
``NAME.npz`` with fixed uint8 inputs, the float inputs Keras was fed and Keras'
outputs of the final and of named intermediate layers. ``fixtures.json`` records
Keras' parameter totals, so the tests need no TensorFlow. Weights are random with a
fixed seed; biases and BatchNormalization statistics are made non-trivial.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import h5py
import keras
import numpy as np
import tensorflow as tf
from keras import layers

SEED = 1234


# --------------------------------------------------------------------------- models


def lenet() -> keras.Model:
    """LeNet-like Sequential model (the `lenet` reference, narrower)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(6, 5, padding="same", activation="relu", name="conv2d_1"),
            layers.MaxPooling2D(2, name="max_pooling2d_1"),
            layers.Conv2D(8, 5, activation="relu", name="conv2d_2"),
            layers.MaxPooling2D(2, name="max_pooling2d_2"),
            layers.Flatten(name="flatten_1"),
            layers.Dropout(0.3, name="dropout_1"),
            layers.Dense(32, activation="relu", name="dense_1"),
            layers.Dense(10, activation="softmax", name="dense_2"),
        ],
        name="lenet",
    )


def branches() -> keras.Model:
    """BatchNormalization + Concatenate + Add, like the `inception`/`residual` references."""
    inp = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(8, 2, padding="same", kernel_initializer="he_normal", name="conv2D_1")(inp)
    x = layers.BatchNormalization(name="bn_1")(x)
    x = layers.Activation("relu", name="act_1")(x)
    b1 = layers.Conv2D(4, 1, padding="same", activation="relu", name="branch_1x1")(x)
    b2 = layers.Conv2D(4, 3, padding="same", activation="relu", name="branch_3x3")(x)
    cat = layers.Concatenate(name="inception")([b1, b2])
    res = layers.Add(name="residual")([x, cat])
    p = layers.MaxPooling2D(2, name="pool1")(res)
    p = layers.Dropout(0.2, name="drop1")(p)
    y = layers.Conv2D(8, 2, padding="same", name="conv2D_2")(p)
    y = layers.BatchNormalization(name="bn_2")(y)
    y = layers.ReLU(name="relu_2")(y)
    y = layers.Add(name="shortcut_2")([p, y])
    y = layers.MaxPooling2D(2, name="pool2")(y)
    f = layers.Flatten(name="flatten")(y)
    h = layers.Dense(16, name="hidden")(f)
    h = layers.Activation("relu", name="hidden_relu")(h)
    out = layers.Dense(10, activation="softmax", name="end")(h)
    return keras.Model(inp, out, name="branches")


def resnet_stem() -> keras.Model:
    """keras.applications.ResNet50 (weights=None) up to its first bottleneck block."""
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    return keras.Model(base.input, base.get_layer("conv2_block1_out").output, name="resnet_stem")


def layer_zoo() -> keras.Model:
    """Every other supported layer: depthwise/separable, 'same' pools, dilation, reshape..."""
    inp = keras.Input((21, 21, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inp)
    x = layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(x)
    x = layers.Conv2D(6, 3, padding="same", dilation_rate=2, activation="relu", name="dilated")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="depthwise")(
        x
    )
    x = layers.LeakyReLU(negative_slope=0.1, name="leaky")(x)
    x = layers.BatchNormalization(epsilon=1e-2, momentum=0.9, scale=False, name="bn")(x)
    x = layers.SeparableConv2D(8, 3, padding="same", activation="swish", name="separable")(x)
    a = layers.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(x)
    b = layers.AveragePooling2D(2, padding="same", name="avgpool")(x)
    c = layers.Concatenate(name="concat")([a, b])
    c = layers.ReLU(max_value=0.5, name="relu_capped")(c)
    c = layers.Conv2D(8, 2, strides=2, padding="same", name="strided")(c)
    g1 = layers.GlobalAveragePooling2D(name="gap")(c)
    g2 = layers.GlobalMaxPooling2D(name="gmp")(c)
    flat = layers.Flatten(name="flat_cl")(c)
    merged = layers.Concatenate(name="merged")([g1, g2, flat])
    d = layers.Dense(12, activation="tanh", name="dense")(merged)
    r = layers.Reshape((2, 2, 3), name="reshape")(d)
    r = layers.Conv2D(4, 2, padding="same", activation="elu", name="conv_small")(r)
    f = layers.Flatten(name="flatten")(r)
    s = layers.Reshape((4, 3), name="reshape_seq")(d)
    s = layers.Activation("sigmoid", name="sig")(s)
    fs = layers.Flatten(name="flat_seq")(s)
    logits = layers.Add(name="mix")(
        [layers.Dense(5, name="logits")(f), layers.Dense(5, name="seq_logits")(fs)]
    )
    out = layers.Softmax(name="probs")(logits)
    return keras.Model(inp, out, name="layer_zoo")


MODELS = {
    # name: (builder, number of inputs, layers whose outputs are recorded (None: all))
    "lenet": (lenet, 3, None),
    "branches": (branches, 3, None),
    "resnet_stem": (
        resnet_stem,
        2,
        [
            "conv1_pad",
            "conv1_conv",
            "conv1_bn",
            "pool1_pool",
            "conv2_block1_out",
        ],
    ),
    "layer_zoo": (layer_zoo, 3, None),
}


# --------------------------------------------------------------------------- weights and inputs


def randomize(model: keras.Model, rng: np.random.Generator) -> None:
    """Give biases and BatchNormalization non-trivial values (initialisers leave 0 and 1)."""
    for layer in model.layers:
        new = []
        for var in layer.weights:
            value = np.asarray(var.numpy())
            short = var.name.split("/")[-1].split(":")[0]
            if short in ("bias", "beta"):
                value = rng.normal(0.0, 0.2, value.shape)
            elif short == "gamma":
                value = rng.uniform(0.5, 1.5, value.shape)
            elif short == "moving_mean":
                value = rng.normal(0.0, 0.3, value.shape)
            elif short == "moving_variance":
                value = rng.uniform(0.5, 2.0, value.shape)
            new.append(value.astype(np.float32))
        if new:
            layer.set_weights(new)


def make_pixels(shape: tuple[int, int, int], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uint8 images N x H x W x C: noise, a smooth gradient, sparse strokes, ..."""
    height, width, channels = shape
    rows, cols = np.mgrid[0:height, 0:width]
    gradient = (rows * 255 // max(height - 1, 1) + cols * 3) % 256
    strokes = np.zeros((height, width), dtype=np.int64)
    strokes[height // 4 : height // 4 + 3, 2:-2] = 255
    strokes[2:-2, width // 2 : width // 2 + 2] = 200
    images = [
        rng.integers(0, 256, (height, width, channels)),
        np.stack([np.roll(gradient, 5 * c, axis=1) for c in range(channels)], axis=-1),
        np.stack([np.roll(strokes, 2 * c, axis=0) for c in range(channels)], axis=-1),
    ]
    return np.stack(images[:count]).astype(np.uint8)


def model_inputs(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    """What convscope feeds by default: pixels / 255, or raw pixels before a Rescaling layer."""
    first = next(layer for layer in model.layers if not isinstance(layer, layers.InputLayer))
    if isinstance(first, layers.Rescaling):
        return pixels.astype(np.float32)
    return pixels.astype(np.float32) / np.float32(255.0)


# --------------------------------------------------------------------------- Keras 2 layout


def keras2_config(model_config: dict) -> dict:
    """A Keras 3 model config rewritten the way Keras 2 (tf.keras 2.x) wrote it."""
    config = _strip(model_config)
    body = config["config"]
    if config["class_name"] == "Sequential":
        layer_list = body["layers"]
        if layer_list and layer_list[0]["class_name"] == "InputLayer":
            # Keras 2.2 style: no InputLayer, the first layer carries batch_input_shape.
            first_input = layer_list.pop(0)
            layer_list[0]["config"]["batch_input_shape"] = first_input["config"]["batch_shape"]
        body["layers"] = [_keras2_layer(layer, functional=False) for layer in layer_list]
    else:
        body["layers"] = [_keras2_layer(layer, functional=True) for layer in body["layers"]]
        for key in ("input_layers", "output_layers"):
            refs = body[key]
            if refs and isinstance(refs[0], str):
                refs = [refs]
            body[key] = [list(ref) for ref in refs]
    return config


def _strip(value):
    """Drop the Keras 3-only keys (module, registered_name, build_config, ...)."""
    if isinstance(value, dict):
        dropped = {"module", "registered_name", "build_config", "shared_object_id"}
        return {k: _strip(v) for k, v in value.items() if k not in dropped}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _keras2_layer(layer: dict, *, functional: bool) -> dict:
    config = dict(layer["config"])
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = config["dtype"]["config"]["name"]
    if "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    if layer["class_name"] == "LeakyReLU":
        config["alpha"] = config.pop("negative_slope")
    if layer["class_name"] == "BatchNormalization" and config.get("axis") == -1:
        config["axis"] = [3]
    out = {"class_name": layer["class_name"], "config": config}
    if functional:
        out["name"] = layer["name"]
        out["inbound_nodes"] = [
            [[*ref, {}] for ref in _tensor_refs(node["args"])] for node in layer["inbound_nodes"]
        ]
    return out


def _tensor_refs(value) -> list[list]:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [list(value["config"]["keras_history"])]
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in _tensor_refs(v)]
    return []


KERAS2_NAMES = {"DepthwiseConv2D": {"kernel": "depthwise_kernel"}}


def write_keras2_h5(source: Path, target: Path) -> None:
    """Rewrite a Keras 3 legacy ``.h5`` in the Keras 2 layout (``layer/kernel:0``, bytes attrs)."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        config = json.loads(src.attrs["model_config"])
        classes = {}
        for layer in config["config"]["layers"]:
            classes[layer["config"]["name"]] = layer["class_name"]
        dst.attrs["keras_version"] = np.bytes_("2.15.0")
        dst.attrs["backend"] = np.bytes_("tensorflow")
        dst.attrs["model_config"] = np.bytes_(json.dumps(keras2_config(config)))
        weights = dst.create_group("model_weights")
        names = [n for n in src["model_weights"].attrs["layer_names"]]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        weights.attrs["layer_names"] = np.array([n.encode() for n in names])
        weights.attrs["keras_version"] = np.bytes_("2.15.0")
        weights.attrs["backend"] = np.bytes_("tensorflow")
        for name in names:
            group = src["model_weights"][name]
            out = weights.create_group(name)
            new_names = []
            for wname in group.attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else str(wname)
                short = wname.split("/")[-1]
                short = KERAS2_NAMES.get(classes.get(name, ""), {}).get(short, short)
                new = f"{name}/{short}:0"
                out.create_dataset(new, data=np.asarray(group[wname]))
                new_names.append(new.encode())
            out.attrs["weight_names"] = np.array(new_names, dtype="S")


# --------------------------------------------------------------------------- main


def run(model: keras.Model, inputs: np.ndarray) -> np.ndarray:
    """The model's output in inference mode."""
    return np.asarray(model(inputs, training=False), dtype=np.float32)


def count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def make(name: str, out_dir: Path) -> dict:
    builder, n_inputs, recorded = MODELS[name]
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = builder()
    randomize(model, rng)
    shape = tuple(model.input_shape[1:])
    pixels = make_pixels(shape, n_inputs, rng)
    inputs = model_inputs(model, pixels)
    names = recorded or [
        layer.name for layer in model.layers if not isinstance(layer, layers.InputLayer)
    ]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outputs = probe([inputs], training=False)
    arrays = {"pixels": pixels, "inputs": inputs, "final": run(model, inputs)}
    for layer_name, value in zip(names, outputs, strict=True):
        arrays[f"layer/{layer_name}"] = np.asarray(value, dtype=np.float32)
    if name == "resnet_stem":
        caffe = keras.applications.resnet50.preprocess_input(pixels.astype(np.float32))
        arrays["inputs_caffe"] = np.asarray(caffe, dtype=np.float32)
        arrays["final_caffe"] = run(model, caffe)
    model.save(out_dir / f"{name}.keras")
    model.save(out_dir / f"{name}.h5")
    write_keras2_h5(out_dir / f"{name}.h5", out_dir / f"{name}.keras2.h5")
    np.savez_compressed(out_dir / f"{name}.npz", **arrays)
    return {
        "params": int(model.count_params()),
        "trainable": count(model.trainable_weights),
        "non_trainable": count(model.non_trainable_weights),
        "input_shape": list(shape),
        "layers": [layer.name for layer in model.layers],
        "recorded": names,
        "softmax_output": name in ("lenet", "branches", "layer_zoo"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/keras"))
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    meta_path = args.out / "fixtures.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["_versions"] = {"keras": keras.__version__, "tensorflow": tf.__version__, "seed": SEED}
    for name in args.models:
        meta[name] = make(name, args.out)
        sizes = {p.name: p.stat().st_size for p in sorted(args.out.glob(f"{name}.*"))}
        print(name, meta[name]["params"], sizes)
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
