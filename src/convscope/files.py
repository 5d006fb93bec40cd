"""Writing files safely: atomic replacement, and a check that a path can be written at all.

Every file convscope writes goes through :func:`atomic_write`, so a crash or a user's
interrupt never leaves a half-written file under the final name. :func:`check_writable`
lets a command refuse an unusable output path before it starts any work.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from convscope.crashpoints import crash_point
from convscope.errors import ConvscopeError, DataError


def unwritable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why a file cannot be written at ``path`` (its folder must exist), or None if it can."""
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        return f"cannot write {target}: it is a folder; give a file name"
    if not parent.exists():
        return f"cannot write {target}: folder {parent} does not exist"
    if not parent.is_dir():
        return f"cannot write {target}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write {target}: folder {parent} is not writable"
    return None


def check_writable(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if a file can be written there; else a one-line ConvscopeError."""
    reason = unwritable_reason(path)
    if reason:
        raise ConvscopeError(reason)
    return Path(path)


def check_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if it is, or can be made, a writable folder; else a ConvscopeError."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConvscopeError(f"{folder} is a file, not a folder; give a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ConvscopeError(f"cannot make folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConvscopeError(f"cannot make folder {folder}: {existing} is not writable")
    return folder


def ensure_folder(path: str | os.PathLike[str]) -> Path:
    """Make the folder ``path`` (and its parents); a failure is a one-line ConvscopeError."""
    folder = check_folder(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConvscopeError(f"cannot make folder {folder}: {exc.strerror or exc}") from exc
    return folder


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` only if the block succeeds.

    The data goes to a hidden temporary file in the same directory (so ``os.replace`` is
    atomic), is flushed and fsynced, then renamed; on any exception the temporary file is
    removed and ``path`` is left as it was. Parent directories are created.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as exc:
        raise ConvscopeError(
            unwritable_reason(target) or f"cannot write {target}: {exc.strerror or exc}"
        ) from exc
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        crash_point("file.before-rename")
        try:
            os.replace(tmp_name, target)
        except IsADirectoryError as exc:
            raise ConvscopeError(
                f"cannot write {target}: it is a folder; give a file name"
            ) from exc
        crash_point("file.after-rename")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically; a failure is a DataError naming the file."""
    try:
        with atomic_write(path) as handle:
            handle.write(data)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot write ({exc.strerror or exc}); check the directory's "
            "permissions and free space"
        ) from exc
