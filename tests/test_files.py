"""Output paths: refused up front with one line when they cannot be written; writes are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from convscope.errors import ConvscopeError
from convscope.files import atomic_write, check_writable, unwritable_reason


def test_a_writable_path_passes(tmp_path: Path) -> None:
    assert unwritable_reason(tmp_path / "a.png") is None
    assert check_writable(tmp_path / "a.png") == tmp_path / "a.png"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda root: root / "missing" / "a.png", "folder"),
        (lambda root: (root / "dir.png").mkdir() or root / "dir.png", "it is a folder"),
        (lambda root: (root / "f").write_text("x") and root / "f" / "a.png", "is a file"),
    ],
    ids=["no-folder", "is-a-folder", "parent-is-a-file"],
)
def test_unwritable_paths_are_explained(tmp_path: Path, make, fragment: str) -> None:
    path = make(tmp_path)
    reason = unwritable_reason(path)
    assert reason is not None and reason.startswith(f"cannot write {path}") and fragment in reason
    with pytest.raises(ConvscopeError, match="cannot write"):
        check_writable(path)


def test_atomic_write_onto_a_folder_is_a_user_error_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    with (
        pytest.raises(ConvscopeError, match="it is a folder"),
        atomic_write(tmp_path / "out.png") as handle,
    ):
        handle.write(b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left


def test_folders_are_checked_and_made_with_one_line_errors(tmp_path: Path) -> None:
    from convscope.files import check_folder, ensure_folder

    assert ensure_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConvscopeError, match="is a file, not a folder"):
        check_folder(tmp_path / "f")
    with pytest.raises(ConvscopeError, match=f"{tmp_path / 'f'} is a file"):
        ensure_folder(tmp_path / "f" / "sub")
    assert not (tmp_path / "f" / "sub").exists()
