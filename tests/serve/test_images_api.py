"""Uploads and image.png: size limits, the CLI's decoding guards, and what a model sees.

An upload is kept decoded in memory and named ``upload:ID``; every probe route takes
it like a dataset SPEC, with the same numbers as the library on the same pixels.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import convscope
from convscope.data.images import fit_to_spec, match_channels
from convscope.data.spec import sample_image
from convscope.serve.app import create_app
from convscope.serve.images import UPLOAD_LIMIT, BoundedStore
from convscope.serve.state import ServeConfig

NOISE = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = ServeConfig(store=tmp_path_factory.mktemp("serve") / "runs")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    """The pixels of mnist:test:0 (28 x 28 uint8)."""
    return convscope.resolve_images("mnist:test:0")[0].pixels


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` gray pixels and holds none (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def upload(client: TestClient, data: bytes, status: int = 200) -> dict:
    response = client.post("/api/images", files={"file": ("image.png", data, "image/png")})
    assert response.status_code == status, response.text
    return response.json()


def png_of(client: TestClient, url: str) -> np.ndarray:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_an_upload_is_a_spec_every_probe_takes(client: TestClient, digit: np.ndarray) -> None:
    data = upload(client, encode(digit))
    spec = data["spec"]
    assert spec.startswith("upload:") and data["shape"] == [28, 28]
    assert upload(client, encode(digit))["spec"] == spec  # the same file, the same id
    url = f"/api/models/lenet5/features?layer=conv2d_1&image={spec}"
    answer = client.get(url).json()
    expected = convscope.feature_maps(convscope.load_model("lenet5"), digit, ["conv2d_1"])
    assert answer["input"] == spec
    assert answer["layers"] == expected.to_dict()["layers"]
    assert np.array_equal(png_of(client, f"/api/image.png?image={spec}"), digit)


def test_a_raw_body_uploads_too(client: TestClient) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    response = client.post(
        "/api/images", content=encode(rgb), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    spec = response.json()["spec"]
    assert np.array_equal(png_of(client, f"/api/image.png?image={spec}"), rgb)


def test_image_png_shows_what_the_model_sees(client: TestClient, digit: np.ndarray) -> None:
    spec = convscope.load_model("lenet5").input_spec
    seen = png_of(client, "/api/image.png?image=sample:china&model=lenet5")
    expected = fit_to_spec(match_channels(sample_image("china"), 1), spec)
    assert seen.shape == (28, 28) and np.array_equal(seen, expected)
    assert np.array_equal(png_of(client, "/api/image.png?image=mnist:test:0-5"), digit)
    assert png_of(client, "/api/image.png?image=sample:china").shape == (427, 640, 3)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: b"", "empty"),
        (lambda: b"not an image at all", "not an image"),
        (lambda: encode(NOISE)[:2000], "truncated or corrupt"),
        (lambda: png_header(20000, 20000), "too large to decode safely"),
        (lambda: png_header(10000, 10000), "too large to decode safely"),
        (lambda: png_header(5000, 5000), "5000x5000 pixels, more than 16,777,216"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(client: TestClient, make, says: str) -> None:
    error = upload(client, make(), status=400)["error"]
    assert says in error and "\n" not in error


def test_odd_images_are_decoded_as_the_cli_decodes_them(client: TestClient) -> None:
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 200)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    first = upload(client, gif.getvalue())["spec"]
    assert png_of(client, f"/api/image.png?image={first}").max() <= 20  # the first frame
    deep = np.array([[0, 65535], [257, 514]], dtype=np.uint16)
    spec = upload(client, encode(Image.fromarray(deep)))["spec"]
    assert png_of(client, f"/api/image.png?image={spec}").tolist() == [[0, 255], [1, 2]]


def test_uploads_over_the_limit_are_413(client: TestClient) -> None:
    too_big = b"\0" * (UPLOAD_LIMIT + 1)
    raw = client.post("/api/images", content=too_big, headers={"content-type": "image/png"})
    assert raw.status_code == 413 and "10 MB" in raw.json()["error"]
    form = client.post("/api/images", files={"file": ("big.png", too_big, "image/png")})
    assert form.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
        for _ in range(11):
            yield b"\0" * 1024**2

    streamed = client.post("/api/images", content=chunks(), headers={"content-type": "image/png"})
    assert streamed.status_code == 413


def test_a_form_without_the_file_field_is_refused(client: TestClient, digit) -> None:
    response = client.post("/api/images", files={"picture": ("d.png", encode(digit), "image/png")})
    assert response.status_code == 400 and "field 'file'" in response.json()["error"]


@pytest.mark.parametrize(
    ("image", "status", "says"),
    [
        ("upload:0123456789abcdef", 404, "no upload"),
        ("upload:NOT-AN-ID", 400, "upload:ID"),
        ("/etc/passwd", 400, "never names a file"),
        ("..%2F..%2Fetc%2Fpasswd", 400, "never names a file"),
        ("%252e%252e", 400, "never names a file"),
        ("sample:nosuch", 400, "no sample image"),
        ("mnist:test:10000", 400, "out of range"),
        ("", 400, "give an image"),
    ],
)
def test_bad_image_specs(client: TestClient, image: str, status: int, says: str) -> None:
    response = client.get(f"/api/image.png?image={image}")
    assert response.status_code == status, response.text
    assert says in response.json()["error"]


def test_the_upload_store_is_bounded() -> None:
    store: BoundedStore[str, bytes] = BoundedStore(2, 10, len)
    for key, value in (("a", b"1"), ("b", b"22"), ("c", b"333")):
        store.put(key, value)
    assert store.get("a") is None and store.get("c") == b"333" and len(store) == 2
    store.put("d", b"4" * 9)  # over the size: the least recently used go first
    assert store.get("b") is None and store.get("c") is None and store.get("d") == b"4" * 9
