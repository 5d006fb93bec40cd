"""Where a store keeps its files, and writing them crash-safely.

Layout under the store directory::

    convscope.db                                  the SQLite database (plus -wal, -shm)
    runs/<run_id>/run/<kind>/<name>.npy           run-level arrays (probe indices, labels)
    runs/<run_id>/epoch_<NNNN>/<kind>/<name>.npy  per-epoch arrays (snapshots, kernels)
    runs/<run_id>/epoch_<NNNN>/checkpoint.ckpt    the epoch's checkpoint

Every file is written under a hidden temporary name in its final directory, fsynced,
then renamed; only afterwards does the database reference it. :class:`FileBatch`
removes what one commit wrote when the commit does not happen.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

import numpy as np

from convscope.crashpoints import crash_point
from convscope.files import atomic_write
from convscope.store.errors import StoreError

DB_NAME = "convscope.db"
RUNS_DIR = "runs"
LOCK_NAME = ".convscope.lock"
CHECKPOINT_KIND = "checkpoint"
CHECKPOINT_NAME = "model"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_KIND = re.compile(r"[a-z][a-z0-9_]*")
_CHUNK = 1 << 20


def run_dir(run_id: str) -> PurePosixPath:
    """A run's directory, relative to the store."""
    return PurePosixPath(RUNS_DIR, run_id)


def epoch_dir(run_id: str, epoch: int | None) -> PurePosixPath:
    """The directory of one epoch's files (``run`` for run-level files), store-relative."""
    return run_dir(run_id) / ("run" if epoch is None else f"epoch_{epoch:04d}")


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a lower-case identifier (it names a directory), else fail."""
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise StoreError(
            f"artifact kind {kind!r} must be a lower-case identifier such as 'snapshot'"
        )
    return kind


def file_stem(name: str) -> str:
    """A file name for an artifact name: itself when safe, else sanitised plus a short hash."""
    if not isinstance(name, str) or not name:
        raise StoreError(f"artifact name {name!r} must be a non-empty string")
    if _SAFE_NAME.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"
    return f"{cleaned[:80]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def array_path(run_id: str, epoch: int | None, kind: str, name: str) -> PurePosixPath:
    """Where the array ``(kind, name)`` of an epoch (or the run) lives, store-relative."""
    return epoch_dir(run_id, epoch) / check_kind(kind) / f"{file_stem(name)}.npy"


def checkpoint_path(run_id: str, epoch: int) -> PurePosixPath:
    """Where an epoch's checkpoint lives, store-relative."""
    return epoch_dir(run_id, epoch) / "checkpoint.ckpt"


def sha256_file(path: Path) -> tuple[str, int]:
    """The file's sha256 (hex) and size in bytes."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fsync_path(path: Path, *, directory: bool = False) -> None:
    """fsync a file, or a directory so that renames in it are durable (no-op where unsupported)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # e.g. Windows cannot open directories
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@dataclass(frozen=True)
class WrittenFile:
    """A file a batch has written and renamed to its final name."""

    kind: str
    name: str
    path: PurePosixPath
    sha256: str
    bytes: int
    dtype: str | None
    shape: tuple[int, ...] | None


def as_array(kind: str, name: str, value: object) -> np.ndarray:
    """``value`` as a numpy array that can be saved without pickle, or a clear error."""
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise StoreError(
            f"array ({kind!r}, {name!r}) has dtype object; store numbers (convert it first)"
        )
    return array


class FileBatch:
    """The files of one commit: kept with :meth:`keep`, else removed on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[WrittenFile] = []
        self._paths: list[Path] = []
        self._dirs: list[Path] = []
        self._kept = False

    def __enter__(self) -> FileBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._kept:
            self.discard()

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its parents, remembering the ones this batch made."""
        missing = []
        for parent in (directory, *directory.parents):
            if parent.exists() or parent == self.root:
                break
            missing.append(parent)
        directory.mkdir(parents=True, exist_ok=True)
        self._dirs.extend(missing)

    def add_array(self, kind: str, name: str, rel: PurePosixPath, array: np.ndarray) -> None:
        """Write ``array`` as ``.npy`` at ``rel`` (temporary name, fsync, rename)."""
        target = self.root / rel
        self._make_dirs(target.parent)
        self._paths.append(target)
        try:
            with atomic_write(target) as handle:
                np.save(handle, array, allow_pickle=False)
        except OSError as exc:
            raise StoreError(
                f"{target}: cannot write ({exc.strerror or exc}); check free space and permissions"
            ) from exc
        self._record(kind, name, rel, str(array.dtype), tuple(int(n) for n in array.shape))

    def add_file(
        self, kind: str, name: str, rel: PurePosixPath, writer: Callable[[Path], None]
    ) -> None:
        """Let ``writer`` write a file at a temporary path, then fsync and rename it to ``rel``."""
        target = self.root / rel
        self._make_dirs(target.parent)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        self._paths += [tmp, target]
        writer(tmp)
        if not tmp.is_file():
            raise StoreError(f"the {kind} writer did not create a file at {tmp}")
        fsync_path(tmp)
        crash_point("file.before-rename")
        os.replace(tmp, target)
        crash_point("file.after-rename")
        self._record(kind, name, rel, None, None)

    def _record(
        self,
        kind: str,
        name: str,
        rel: PurePosixPath,
        dtype: str | None,
        shape: tuple[int, ...] | None,
    ) -> None:
        """Hash the renamed file and remember it."""
        digest, size = sha256_file(self.root / rel)
        self.files.append(WrittenFile(kind, name, rel, digest, size, dtype, shape))

    def sync(self) -> None:
        """fsync every directory that received a file or a new directory, so renames persist."""
        touched = {(self.root / f.path).parent for f in self.files}
        touched |= {directory.parent for directory in self._dirs}
        for directory in sorted(touched, key=lambda d: -len(d.parts)):
            fsync_path(directory, directory=True)

    def keep(self) -> None:
        """The database now references the files: do not remove them."""
        self._kept = True

    def discard(self) -> None:
        """Remove every file (and new directory) this batch wrote."""
        for path in self._paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for directory in sorted(self._dirs, key=lambda d: -len(d.parts)):  # deepest first
            with contextlib.suppress(OSError):
                directory.rmdir()


def remove_tree(path: Path) -> None:
    """Remove a directory tree if it exists."""
    shutil.rmtree(path, ignore_errors=True)


def walk_files(root: Path) -> Iterator[PurePosixPath]:
    """Every file under ``root/runs``, store-relative, including hidden temporary files."""
    base = root / RUNS_DIR
    if not base.is_dir():
        return
    for directory, _, names in os.walk(base):
        rel = PurePosixPath(Path(directory).relative_to(root).as_posix())
        for name in names:
            yield rel / name


def remove_empty_dirs(root: Path) -> None:
    """Remove empty directories under ``root/runs`` (deepest first), keeping ``runs`` itself."""
    base = root / RUNS_DIR
    if not base.is_dir():
        return
    for directory, _, _ in sorted(os.walk(base), key=lambda item: -len(item[0])):
        if Path(directory) != base:
            with contextlib.suppress(OSError):
                Path(directory).rmdir()


@contextlib.contextmanager
def store_lock(root: Path, *, exclusive: bool, wait_s: float = 30.0) -> Iterator[None]:
    """An advisory lock on the store: writers share it, orphan removal takes it alone.

    Without it, removing orphans could delete a file that a running commit has renamed
    but not yet recorded. On systems without ``fcntl`` (Windows) it does nothing.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(root / LOCK_NAME, "a+b") as handle:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{root}: another process is writing to the store; try again later"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
