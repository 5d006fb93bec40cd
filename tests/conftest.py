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


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point CONVSCOPE_HOME at a fresh directory so tests never touch the user's cache.

    Datasets are fetched into it on first use (Fashion-MNIST from Debian's package).
    """
    home = tmp_path_factory.mktemp("convscope-home")
    with pytest.MonkeyPatch.context() as patch:
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
