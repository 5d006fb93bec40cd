"""Fuzz the readers and parsers that take user input, with hypothesis.

Each family generates small inputs (mutated IDX files, damaged images, ``.keras``
archives, checkpoints and other pickles, SPEC strings, class grammar strings), hands
each to convscope as a user would and checks that:

- every failure is a :class:`convscope.errors.ConvscopeError` (any other exception is a
  *crash*; hypothesis shrinks it to the smallest input, printed as repr / hex);
- no case runs past ``--case-timeout`` seconds (a *hang*; bounded with ``SIGALRM``);
- nothing is left behind: the case's temporary folder holds only the input it was given.

Inputs stay a few KB, so memory stays bounded (huge *declared* sizes are in the headers,
not in the data). Run::

    .venv/bin/python benchmarks/fuzz_inputs.py [--cases 10000] [--seed 0]

The last line is one JSON object: ``{"cases": ..., "crashes": ..., "hangs": ...,
"slowest_ms": ...}``. ``tests/fuzz/test_fuzz_inputs.py`` runs the same properties briefly.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import pickle
import signal
import struct
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.errors import ConvscopeError

CASE_TIMEOUT_S = 5.0
SHOWN_BYTES = 96


class CaseTimeout(BaseException):
    """A case ran past its deadline (a BaseException, so ``except Exception`` can't eat it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def shown(value: Any) -> str:
    """A short printable form of an input: hex for bytes, repr otherwise."""
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        more = f"... ({len(data)} bytes)" if len(data) > SHOWN_BYTES else ""
        return f"hex:{data[:SHOWN_BYTES].hex()}{more}"
    text = repr(_abbrev(value))
    return text if len(text) <= 240 else f"{text[:240]}... ({len(text)} chars)"


def _abbrev(value: Any) -> Any:
    """``value`` with tensors and long byte strings replaced by a short description."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<{type(value).__name__} {tuple(value.shape)}>"
    if isinstance(value, (bytes, bytearray)) and len(value) > SHOWN_BYTES:
        return f"<{len(value)} bytes: {bytes(value[:SHOWN_BYTES]).hex()}...>"
    if isinstance(value, dict):
        if len(value) > 4 and all(hasattr(v, "shape") for v in value.values()):
            return f"<state dict of {len(value)} tensors>"
        return {k: _abbrev(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_abbrev(v) for v in value)
    return value


def _where(exc: BaseException) -> str:
    """The innermost frame of ``exc`` inside convscope (else the innermost), as file:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "convscope" in f.filename and "fuzz_inputs" not in f.filename]
    frame = (ours or frames or [None])[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"


@dataclass
class Crash:
    kind: str  # exception type, or "stray files"
    where: str
    message: str
    smallest: str


@dataclass
class FamilyResult:
    name: str
    cases: int = 0
    crashes: dict[tuple[str, str], Crash] = field(default_factory=dict)
    hangs: list[str] = field(default_factory=list)
    slowest_ms: float = 0.0
    slowest_input: str = ""


# A family: a strategy of inputs, and a function that writes the input into the case's
# folder (returning that folder's expected contents) and hands it to convscope.
Target = Callable[[Any, Path], None]


@dataclass(frozen=True)
class Family:
    name: str
    strategy: st.SearchStrategy
    target: Target


def warm_up() -> None:
    """Import what the targets import, so that no case's time includes an import."""
    import convscope.data.idx
    import convscope.data.images
    import convscope.data.spec
    import convscope.models.checkpoint
    import convscope.models.keras.files
    import convscope.probe.classes  # noqa: F401


def run_family(
    family: Family,
    cases: int,
    *,
    seed: int | None = None,
    case_timeout: float = CASE_TIMEOUT_S,
    tmp_root: Path | None = None,
) -> FamilyResult:
    """Run ``cases`` examples of one family; return what they found (never raises)."""
    warm_up()
    result = FamilyResult(family.name)

    def check(value: Any) -> None:
        result.cases += 1
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix="fuzz-") as folder:
            tmp = Path(folder)
            start = time.perf_counter()
            try:
                with time_limit(case_timeout):
                    family.target(value, tmp)
            except ConvscopeError:
                pass
            except CaseTimeout:
                result.hangs.append(shown(value))
                return
            except Exception as exc:
                key = (type(exc).__name__, _where(exc))
                # Hypothesis replays the shrunk example last: the last one kept is the smallest.
                message = " ".join(str(exc).split())[:160]
                result.crashes[key] = Crash(key[0], key[1], message, shown(value))
                raise
            finally:
                elapsed = (time.perf_counter() - start) * 1000
                if elapsed > result.slowest_ms:
                    result.slowest_ms, result.slowest_input = elapsed, shown(value)
            given_names = {p.name for p in tmp.iterdir() if p.name.startswith("input")}
            stray = sorted(p.name for p in tmp.iterdir() if p.name not in given_names)
            if stray:
                key = ("stray files", ",".join(stray)[:80])
                result.crashes[key] = Crash(key[0], "", f"left {stray}", shown(value))
                raise AssertionError(f"stray files {stray}")

    test = settings(
        max_examples=cases,
        deadline=None,  # the per-case bound is time_limit, a hard one
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
        print_blob=False,
        verbosity=hypothesis.Verbosity.quiet,
    )(given(family.strategy)(check))
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    with contextlib.suppress(Exception):  # crashes are recorded by check
        test()
    return result


# --------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_edits: int = 4) -> bytes:
    """``data`` with a few bytes flipped or set, a slice cut out, truncated or extended."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, max_edits))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "cut", "append"]))
        if not out and op != "append":
            continue
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            out[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "truncate":
            del out[i:]
        elif op == "cut":
            del out[i : i + draw(st.integers(1, 16))]
        else:
            out += draw(st.binary(max_size=16))
    return bytes(out)


HUGE = [0, 1, 255, 65535, 1 << 16, (1 << 31) - 1, (1 << 32) - 1]


# --------------------------------------------------------------------------- IDX


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[str, bytes]:
    from convscope.data.idx import IDX_DTYPES

    code = draw(st.sampled_from(sorted(IDX_DTYPES)))
    shape = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    size = IDX_DTYPES[code].itemsize
    count = 1
    for dim in shape:
        count *= dim
    raw = bytearray(bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
    raw += draw(st.binary(min_size=count * size, max_size=count * size))
    header = draw(st.sampled_from(["keep", "magic", "ndim", "dim"]))
    if header == "magic":
        raw[draw(st.integers(0, 3))] = draw(st.integers(0, 255))
    elif header == "ndim":
        raw[3] = draw(st.sampled_from([0, 5, 255, draw(st.integers(0, 255))]))
    elif header == "dim":
        at = 4 + 4 * draw(st.integers(0, len(shape) - 1))
        raw[at : at + 4] = struct.pack(">I", draw(st.sampled_from(HUGE)))
    data = draw(mutated(bytes(raw), max_edits=2))
    if draw(st.booleans()):
        return "gz", draw(mutated(gzip.compress(data, mtime=0), max_edits=2))
    return "raw", data


def idx_target(value: tuple[str, bytes], tmp: Path) -> None:
    from convscope.data.idx import read_idx

    kind, data = value
    path = tmp / ("input-ubyte.gz" if kind == "gz" else "input-ubyte")
    path.write_bytes(data)
    read_idx(path)


# --------------------------------------------------------------------------- images


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR size replaced (and the chunk's CRC fixed, to pass it)."""
    body = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:16] + body[4:] + struct.pack(">I", zlib.crc32(body)) + data[33:]


def _set_size(fmt: str, data: bytes, width: int, height: int) -> bytes:
    if fmt == "PNG":
        return _png_with_size(data, width, height)
    out = bytearray(data)
    if fmt == "GIF":  # the logical screen, little-endian uint16s at 6 and 8
        out[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    else:  # JPEG: the frame header after an SOF marker, big-endian uint16s
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            at = out.find(marker)
            if at >= 0:
                out[at + 5 : at + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
                break
    return bytes(out)


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes]:
    from PIL import Image

    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF"]))
    modes = {"PNG": ["L", "RGB", "RGBA", "P", "I;16", "1"], "JPEG": ["L", "RGB"], "GIF": ["P", "L"]}
    mode = draw(st.sampled_from(modes[fmt]))
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    channels = {"RGB": 3, "RGBA": 4, "I;16": 2}.get(mode, 1)
    if mode == "1":
        img = Image.new("1", (width, height), draw(st.integers(0, 1)))
    else:
        pixels = draw(
            st.binary(min_size=width * height * channels, max_size=width * height * channels)
        )
        img = Image.frombytes(mode, (width, height), pixels)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **({"progressive": draw(st.booleans())} if fmt == "JPEG" else {}))
    data = buffer.getvalue()
    if draw(st.booleans()):
        data = _set_size(fmt, data, draw(st.sampled_from(HUGE)), draw(st.sampled_from(HUGE[:4])))
    return fmt, draw(mutated(data))


def image_target(value: tuple[str, bytes], tmp: Path) -> None:
    from convscope.data.images import read_pixels

    fmt, data = value
    path = tmp / f"input.{fmt.lower()}"
    path.write_bytes(data)
    read_pixels(path)


# --------------------------------------------------------------------------- .keras

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

LAYER_CLASSES = ["Conv2D", "Dense", "InputLayer", "Flatten", "BatchNormalization", "Conv2d"]


@st.composite
def keras_configs(draw: st.DrawFn) -> bytes:
    """config.json bytes: a Keras-like config with fields mutated, other JSON, or junk."""
    kind = draw(st.sampled_from(["keras", "json", "deep", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.integers(1, 50_000))
        return b"[" * depth + b"]" * draw(st.sampled_from([depth, 0]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    layer = st.fixed_dictionaries(
        {},
        optional={
            "class_name": st.sampled_from(LAYER_CLASSES) | json_values,
            "name": st.text(max_size=8) | json_values,
            "config": st.fixed_dictionaries({}, optional={"name": json_values}) | json_values,
        },
    )
    entries = st.lists(layer | json_values, max_size=5)
    body = (
        entries
        | st.fixed_dictionaries({}, optional={"layers": entries | json_values})
        | json_values
    )
    config = draw(
        st.fixed_dictionaries(
            {},
            optional={"class_name": st.sampled_from(["Sequential", "Functional"]), "config": body},
        )
    )
    return json.dumps(config).encode()


@cache
def _weights_h5(named: bool) -> bytes:
    """A small ``model.weights.h5``: ``layers/conv2d/vars/0`` and ``layers/dense/vars/{0,1}``."""
    import h5py
    import numpy as np

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, shapes in {"conv2d": [(3, 3, 1, 2)], "dense": [(4, 2), (2,)]}.items():
            group = f.create_group(f"layers/{key}/vars")
            if named:
                group.attrs["name"] = key
            for i, shape in enumerate(shapes):
                group.create_dataset(str(i), data=np.zeros(shape, "float32"))
    return buffer.getvalue()


@st.composite
def keras_archives(draw: st.DrawFn) -> bytes:
    members = {
        "config.json": draw(keras_configs()),
        "metadata.json": json.dumps(draw(json_values)).encode(),
        "model.weights.h5": _weights_h5(draw(st.booleans())),
    }
    kept = draw(st.sets(st.sampled_from(sorted(members)), max_size=3))
    keep_all = draw(st.booleans())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if keep_all or name in kept:
                archive.writestr(name, data)
    data = buffer.getvalue()
    return draw(mutated(data)) if draw(st.integers(0, 3)) == 0 else data


def keras_target(data: bytes, tmp: Path) -> None:
    from convscope.models.keras.files import read_keras_file

    path = tmp / "input.keras"
    path.write_bytes(data)
    read_keras_file(path)


# --------------------------------------------------------------------------- checkpoints


@cache
def _checkpoint() -> tuple[bytes, dict[str, Any]]:
    """A real convscope checkpoint of the small ``lenet`` zoo model: its bytes and payload."""
    import torch

    from convscope.models.checkpoint import save_checkpoint
    from convscope.models.loading import load_model

    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(load_model("lenet"), Path(folder) / "lenet.pt")
        data = path.read_bytes()
    return data, torch.load(io.BytesIO(data), weights_only=True)


# Only the zoo's small models and unknown sources: torchvision/timm recipes could download.
recipes = st.fixed_dictionaries(
    {},
    optional={
        "source": st.sampled_from(["zoo", "file", "nope"]) | json_values,
        "name": st.sampled_from(["lenet", "sequential", "no-such-model"]) | json_values,
    },
)


@st.composite
def checkpoint_payloads(draw: st.DrawFn) -> tuple[str, Any]:
    """('torch', payload dict), ('pickle', pickle bytes) or ('bytes', damaged file bytes)."""
    kind = draw(st.sampled_from(["torch", "pickle", "bytes"]))
    data, payload = _checkpoint()
    if kind == "bytes":
        return kind, draw(mutated(data, max_edits=3))
    fields = dict(payload)
    for key in draw(st.sets(st.sampled_from(sorted(fields)), max_size=4)):
        change = draw(st.sampled_from(["drop", "json"]))
        if change == "drop":
            del fields[key]
        else:
            fields[key] = draw(json_values)
    if draw(st.booleans()):
        fields["build"] = draw(recipes | json_values)
    if draw(st.booleans()):
        fields["format_version"] = draw(st.integers() | json_values)
    if kind == "pickle":
        fields.pop("state_dict", None)  # tensors pickled plainly are refused anyway
        protocol = draw(st.integers(0, pickle.HIGHEST_PROTOCOL))
        return kind, pickle.dumps(draw(st.just(fields) | json_values), protocol=protocol)
    return kind, fields


def checkpoint_target(value: tuple[str, Any], tmp: Path) -> None:
    import torch

    from convscope.models.checkpoint import load_checkpoint

    kind, content = value
    path = tmp / "input.pt"
    if kind == "torch":
        torch.save(content, path)
    else:
        path.write_bytes(content)
    load_checkpoint(path)


# --------------------------------------------------------------------------- SPEC strings

digits = st.text("0123456789", min_size=1, max_size=24) | st.integers(4000, 6000).map(
    lambda n: "9" * n
)
unicode_digits = st.text(st.characters(categories=["Nd"]), min_size=1, max_size=6)
numbers = digits | unicode_digits | st.integers(-(10**30), 10**30).map(str)
selects = (
    numbers
    | st.tuples(numbers, numbers).map("-".join)
    | st.tuples(numbers, numbers).map(lambda ab: f"-{ab[0]}-{ab[1]}")
    | st.text(max_size=12)
)
specs = st.tuples(
    st.sampled_from(["mnist", "fashion-mnist", "cifar10", "x"]) | st.text(max_size=8),
    st.sampled_from(["test", "train"]) | st.text(max_size=6),
    selects,
).map(":".join) | st.text(max_size=40)


def spec_target(value: tuple[str, int | None], tmp: Path) -> None:
    from convscope.data.spec import parse_dataset_spec

    text, limit = value
    parse_dataset_spec(text, limit=limit)


# --------------------------------------------------------------------------- class grammar

class_items = (
    numbers
    | st.tuples(numbers, numbers).map("-".join)
    | st.sampled_from(["all", "ALL", " all ", "", ",", "-", "--"])
    | st.text(max_size=10)
)
class_specs = (
    st.lists(class_items, max_size=5).map(",".join)
    | st.integers(-(10**30), 10**30)
    | st.booleans()
    | st.lists(class_items | st.integers(-(10**6), 10**6), max_size=5)
    | st.text(max_size=20)
)
class_names = st.sampled_from(
    [("zero", "one", "two"), tuple(str(i) for i in range(10)), (), ("a", "A", "1-2", "all")]
) | st.lists(st.text(max_size=6), max_size=6).map(tuple)


def class_target(value: tuple[Any, tuple[str, ...], bool], tmp: Path) -> None:
    from convscope.probe.classes import class_indices, one_class

    spec, classes, one = value
    (one_class if one else class_indices)(spec, classes)


FAMILIES = (
    Family("idx", idx_files(), idx_target),
    Family("image", image_files(), image_target),
    Family("keras", keras_archives(), keras_target),
    Family("checkpoint", checkpoint_payloads(), checkpoint_target),
    Family("spec", st.tuples(specs, st.sampled_from([-1, None, 0, 16])), spec_target),
    Family("classes", st.tuples(class_specs, class_names, st.booleans()), class_target),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in all (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="default: derandomized")
    parser.add_argument("--case-timeout", type=float, default=CASE_TIMEOUT_S)
    parser.add_argument("--family", action="append", help="run only these families")
    args = parser.parse_args(argv)
    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    per_family = max(1, args.cases // len(families))
    results = []
    with tempfile.TemporaryDirectory(prefix="convscope-fuzz-") as root:
        for family in families:
            start = time.perf_counter()
            result = run_family(
                family,
                per_family,
                seed=args.seed,
                case_timeout=args.case_timeout,
                tmp_root=Path(root),
            )
            took = time.perf_counter() - start
            results.append(result)
            print(
                f"{family.name:<11} {result.cases:>6} cases  {len(result.crashes)} crashes  "
                f"{len(result.hangs)} hangs  slowest {result.slowest_ms:.0f} ms  ({took:.1f} s)",
                flush=True,
            )
            for crash in result.crashes.values():
                print(f"  CRASH {crash.kind} at {crash.where}: {crash.message}")
                print(f"        smallest input: {crash.smallest}")
            for hang in result.hangs[:5]:
                print(f"  HANG  input: {hang}")
    slowest = max(results, key=lambda r: r.slowest_ms)
    print(f"slowest case: {slowest.name}, {slowest.slowest_ms:.0f} ms, {slowest.slowest_input}")
    summary = {
        "cases": sum(r.cases for r in results),
        "crashes": sum(len(r.crashes) for r in results),
        "hangs": sum(len(r.hangs) for r in results),
        "slowest_ms": round(slowest.slowest_ms, 1),
    }
    print(json.dumps(summary))
    return 1 if summary["crashes"] or summary["hangs"] else 0


if __name__ == "__main__":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    sys.exit(main())
