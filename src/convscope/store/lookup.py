"""Finding runs by what a user types (id, id prefix, name), and noticing dead runs.

A run still marked ``running`` whose process is gone from this host is reported as
``interrupted``, and the database is updated when it can be. The check is by process
id, so a recycled pid can hide a dead run until that process ends too.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import replace

from convscope.naming import close_matches
from convscope.store.errors import StoreError
from convscope.store.records import RUN_SELECT, RunRecord, RunStatus, run_from_row
from convscope.store.schema import now_iso

_HEX = set("0123456789abcdef")


def select_runs(conn: sqlite3.Connection, where: str = "", params: tuple = ()) -> list[RunRecord]:
    """Runs matching an SQL ``WHERE`` clause, oldest first."""
    sql = f"{RUN_SELECT} {where} ORDER BY created, rowid"
    return [run_from_row(row) for row in conn.execute(sql, params)]


def _listing(records: list[RunRecord]) -> str:
    """``id (name), ...`` for messages."""
    return ", ".join(f"{r.id} ({r.name})" for r in records)


def _unknown(conn: sqlite3.Connection, ref: str, where: str | None) -> StoreError:
    """The error for a reference that matches no run, with close matches and the store."""
    candidates = [row[0] for row in conn.execute("SELECT id FROM runs")]
    candidates += [row[0] for row in conn.execute("SELECT DISTINCT name FROM runs")]
    store = f"the store {where}" if where else "this store"
    listing = f"convscope runs list --store {where}" if where else "convscope runs list"
    return StoreError(
        f"no run {ref!r} in {store}{close_matches(ref, candidates)} (`{listing}` shows the "
        "runs; --store DIR names another store)"
    )


def resolve(
    conn: sqlite3.Connection, ref: str, *, exact: bool = False, where: str | None = None
) -> RunRecord:
    """The run whose id is ``ref``, else whose unique name is, else whose id starts with it.

    With ``exact`` only a full id or a unique name is accepted (for deleting).
    """
    if not isinstance(ref, str) or not ref:
        raise StoreError("give a run id or name (`convscope runs list` shows them)")
    found = select_runs(conn, "WHERE id = ?", (ref,))
    if found:
        return found[0]
    found = select_runs(conn, "WHERE name = ?", (ref,))
    if len(found) > 1:
        raise StoreError(f"{len(found)} runs are named {ref!r}: {_listing(found)}; give an id")
    if found:
        return found[0]
    prefixed = []
    if set(ref) <= _HEX:
        prefixed = select_runs(conn, "WHERE substr(id, 1, ?) = ?", (len(ref), ref))
    if exact and prefixed:
        raise StoreError(
            f"{ref!r} is only the start of a run id ({_listing(prefixed)}); give the full id"
        )
    if len(prefixed) > 1:
        raise StoreError(
            f"{ref!r} is the start of several run ids: {_listing(prefixed)}; give more characters"
        )
    if prefixed:
        return prefixed[0]
    raise _unknown(conn, ref, where)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (True when it cannot be told)."""
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _is_stale(record: RunRecord, host: str) -> bool:
    """A run marked running whose process on this host is gone."""
    return (
        record.status == RunStatus.RUNNING
        and record.host == host
        and record.pid is not None
        and not pid_alive(record.pid)
    )


def refresh_stale(conn: sqlite3.Connection, records: list[RunRecord]) -> list[RunRecord]:
    """``records`` with dead running runs turned ``interrupted`` (also in the database)."""
    host = socket.gethostname()
    stale = {r.id for r in records if _is_stale(r, host)}
    if not stale:
        return records
    now = now_iso()
    try:
        conn.execute("BEGIN IMMEDIATE")
        for record in records:
            if record.id in stale:
                conn.execute(
                    "UPDATE runs SET status = ?, updated = ?, finished = ? "
                    "WHERE id = ? AND status = ? AND pid = ?",
                    (RunStatus.INTERRUPTED, now, now, record.id, RunStatus.RUNNING, record.pid),
                )
        conn.execute("COMMIT")
    except sqlite3.OperationalError:  # a read-only store: report it all the same
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    return [
        replace(r, status=str(RunStatus.INTERRUPTED), updated=now, finished=now)
        if r.id in stale
        else r
        for r in records
    ]
