"""Test-wide set-up: an isolated convscope cache, and the --overwrite flag for expected files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--overwrite",
        action="store_true",
        help="rewrite expected-output files instead of comparing",
    )


TRAINING_FIXTURES = frozenset({"trained_lenet5", "trained_lenet", "recorded_runs"})
"""Session fixtures that train a model: a test that uses one is slow (`make test-fast`
leaves it out), whether or not it is marked itself."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point CONVSCOPE_HOME at a fresh directory so tests never touch the user's cache.

    Datasets are fetched into it on first use (Fashion-MNIST from Debian's package).
    The working directory is a fresh one too, so a command that falls back to the
    default ``./convscope-runs`` store cannot write into the checkout.
    """
    home = tmp_path_factory.mktemp("convscope-home")
    workdir = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("CONVSCOPE_HOME", str(home))
        patch.delenv("CONVSCOPE_DATA_DIR", raising=False)
        patch.delenv("CONVSCOPE_DEBUG", raising=False)
        yield home


@pytest.fixture
def overwrite(request: pytest.FixtureRequest) -> bool:
    """Whether expected-output files should be rewritten (``pytest --overwrite``)."""
    return bool(request.config.getoption("--overwrite"))


def check_expected(path: Path, actual: str, overwrite: bool) -> None:
    """Compare ``actual`` with the expected file, or rewrite it with ``--overwrite``."""
    if overwrite or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        if not overwrite:
            pytest.fail(f"{path} did not exist; written now — check it and commit it")
    assert actual == path.read_text(), f"output differs from {path} (pytest --overwrite to update)"


def _train_on_mnist(name: str, tmp_path_factory: pytest.TempPathFactory, n: int) -> Path:
    """Train zoo model ``name`` for one epoch on ``n`` stratified MNIST images; its checkpoint."""
    from dataclasses import replace

    from convscope.data.datasets import load_dataset
    from convscope.data.sampling import stratified_indices
    from convscope.models.checkpoint import save_checkpoint
    from convscope.models.loading import load_model
    from convscope.train.loop import TrainConfig
    from convscope.train.trainer import fit

    train = load_dataset("mnist", "train")
    keep = stratified_indices(train.labels, n // 10, seed=0)
    subset = replace(train, images=train.images[keep], labels=train.labels[keep])
    model = load_model(name, seed=0)
    fit(model, subset, None, TrainConfig(epochs=1, batch_size=64, seed=0, lr=2e-3))
    path = tmp_path_factory.mktemp(f"trained-{name}") / f"{name}.ckpt"
    save_checkpoint(model, path)
    return path


@pytest.fixture(scope="session")
def trained_lenet5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint of ``lenet5`` trained one epoch on 12,000 MNIST images (about 97% accurate)."""
    return _train_on_mnist("lenet5", tmp_path_factory, 12_000)


@pytest.fixture(scope="session")
def trained_lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint of ``lenet`` (the LeNet-like reference) trained one epoch on 12,000 MNIST images."""
    return _train_on_mnist("lenet", tmp_path_factory, 12_000)


@pytest.fixture(scope="session")
def recorded_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A store with two runs (``sequential``, ``residual``) of one study, ``"tiny"``.

    Each trained 2 epochs on 2,000 Fashion-MNIST images with ``hidden`` recorded on
    100 probe images. Tests may add cached maps to it, but must not delete anything.
    """
    from tests.stores import train_tiny_study

    root = tmp_path_factory.mktemp("recorded") / "runs"
    ids = train_tiny_study(root, subset=2000, probe_per_class=10)
    return root, ids
