"""``RunStore.check``: is every recorded file there and unchanged, and is nothing else there?

Problems are one line each and start with their category: ``database:``, ``missing
file:``, ``size mismatch:``, ``checksum mismatch:`` or ``orphan file:`` (a file under
``runs/`` that the database does not reference, such as the temporary file of a commit
that was killed). The file tree is listed before the database is read, so a commit that
finishes meanwhile is not mistaken for orphans.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path, PurePosixPath

from convscope.store import files
from convscope.store.records import ARTIFACT_SELECT, ArtifactRecord, CheckReport, artifact_from_row


def _database_problems(conn: sqlite3.Connection) -> list[str]:
    """SQLite's integrity and foreign-key checks, as problem lines."""
    problems = [
        f"database: {row[0]}" for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"
    ]
    problems += [
        f"database: row {rowid} of {table} points at a missing {parent} row"
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")
    ]
    return problems


def _file_problem(root: Path, artifact: ArtifactRecord, verify: bool) -> str | None:
    """What is wrong with one recorded file, or None."""
    path = root / artifact.path
    where = artifact.describe()
    if not path.is_file():
        return f"missing file: {artifact.path} ({where})"
    size = path.stat().st_size
    if size != artifact.bytes:
        return (
            f"size mismatch: {artifact.path} has {size} bytes, {artifact.bytes} recorded ({where})"
        )
    if verify and files.sha256_file(path)[0] != artifact.sha256:
        return f"checksum mismatch: {artifact.path} differs from its recorded sha256 ({where})"
    return None


def _remove(root: Path, orphans: list[str]) -> list[str]:
    """Delete orphan files and the directories left empty; returns the removed paths."""
    removed = []
    for rel in orphans:
        with contextlib.suppress(FileNotFoundError):
            (root / rel).unlink()
            removed.append(rel)
    files.remove_empty_dirs(root)
    return removed


def _scan(conn: sqlite3.Connection, root: Path, verify: bool) -> tuple[list[str], list[str]]:
    """(problems other than orphans, orphan paths)."""
    on_disk = sorted(str(p) for p in files.walk_files(root))
    conn.execute("BEGIN")
    try:
        problems = _database_problems(conn)
        artifacts = [artifact_from_row(row) for row in conn.execute(ARTIFACT_SELECT)]
    finally:
        conn.execute("COMMIT")
    referenced = {str(PurePosixPath(a.path)) for a in artifacts}
    for artifact in artifacts:
        problem = _file_problem(root, artifact, verify)
        if problem:
            problems.append(problem)
    return problems, [rel for rel in on_disk if rel not in referenced]


def check_store(
    conn: sqlite3.Connection,
    root: Path,
    *,
    fix_orphans: bool = False,
    verify_checksums: bool = True,
) -> CheckReport:
    """Check a store's database and files; with ``fix_orphans`` delete unreferenced files."""
    if not fix_orphans:
        problems, orphans = _scan(conn, root, verify_checksums)
        problems += [f"orphan file: {rel} (not in the database)" for rel in orphans]
        return CheckReport(ok=not problems, problems=problems, orphans=orphans)
    with files.store_lock(root, exclusive=True):
        problems, orphans = _scan(conn, root, verify_checksums)
        removed = _remove(root, orphans)
    return CheckReport(ok=not problems, problems=problems, orphans=orphans, removed=removed)
