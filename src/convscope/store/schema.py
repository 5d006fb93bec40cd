"""The store's SQLite schema and its migrations, and how a connection is opened.

Migrations are an ordered tuple of functions: migration ``k`` (1-based) takes a database
at version ``k - 1`` to version ``k``; version 0 is an empty database. Each applied
migration adds a row to ``schema_version``, all inside one ``BEGIN IMMEDIATE``
transaction, so concurrent openers migrate once and a crash leaves the old version.
A database from a newer convscope (a higher version than we know) is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from convscope.store.errors import StoreError

BUSY_TIMEOUT_MS = 30_000

_V1 = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied TEXT NOT NULL
    )""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        study TEXT,
        model TEXT NOT NULL,
        dataset TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL
            CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        finished TEXT,
        convscope_version TEXT,
        torch_version TEXT,
        pid INTEGER,
        host TEXT
    )""",
    "CREATE INDEX runs_study ON runs (study)",
    "CREATE INDEX runs_name ON runs (name)",
    """CREATE TABLE epochs (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL CHECK (epoch >= 0),
        seconds REAL,
        committed TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch)
    )""",
    """CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, epoch, name),
        FOREIGN KEY (run_id, epoch) REFERENCES epochs (run_id, epoch) ON DELETE CASCADE
    )""",
    """CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        epoch INTEGER,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        dtype TEXT,
        shape TEXT,
        created TEXT NOT NULL,
        FOREIGN KEY (run_id, epoch) REFERENCES epochs (run_id, epoch) ON DELETE CASCADE
    )""",
    "CREATE UNIQUE INDEX artifacts_key ON artifacts (run_id, coalesce(epoch, -1), kind, name)",
    "CREATE INDEX artifacts_epoch ON artifacts (run_id, epoch)",
)


def _initial(conn: sqlite3.Connection) -> None:
    """Version 1: runs, epochs, metrics (long format) and artifacts."""
    for statement in _V1:
        conn.execute(statement)


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_initial,)


def now_iso() -> str:
    """The current time, ISO 8601 in UTC with milliseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, foreign keys and a busy timeout."""
    try:
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{db_path}: cannot open the run store's database ({exc})") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(
            f"{db_path}: not a SQLite database ({exc}); move it away or pass another --store"
        ) from exc
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version: 0 for an empty database."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" in tables:
        (version,) = conn.execute("SELECT coalesce(MAX(version), 0) FROM schema_version").fetchone()
        return int(version)
    if tables - {"sqlite_sequence"}:
        raise StoreError(
            "the database holds tables but no schema_version: it is not a convscope run store; "
            "pass another --store"
        )
    return 0


def _refuse_newer(version: int, db_name: str) -> None:
    """Fail when the database was written by a newer convscope."""
    known = len(MIGRATIONS)
    if version > known:
        raise StoreError(
            f"{db_name}: schema version {version} is newer than this convscope knows ({known}); "
            "upgrade convscope (pip install -U convscope)"
        )


def migrate(conn: sqlite3.Connection, db_name: str = "convscope.db") -> int:
    """Bring the database up to the newest schema; returns the version it now has."""
    version = schema_version(conn)
    _refuse_newer(version, db_name)
    if version == len(MIGRATIONS):
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)  # another process may have migrated meanwhile
        _refuse_newer(version, db_name)
        for number in range(version + 1, len(MIGRATIONS) + 1):
            MIGRATIONS[number - 1](conn)
            conn.execute(
                "INSERT INTO schema_version (version, applied) VALUES (?, ?)", (number, now_iso())
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
