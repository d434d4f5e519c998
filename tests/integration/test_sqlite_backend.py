"""The SQLite backend's connections (``tarifa.sqlite_backend``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.django_db
def test_a_new_connection_keeps_the_locks_of_the_open_ones(tmp_path: Path) -> None:
    """A worker opens a connection per thread. Opening one used to open and close a descriptor of the
    database file, which drops every POSIX lock the process holds on it: the other threads'
    connections lost their locks, so another process could take the database from under them (under
    ``tarifa serve`` the workers answered "disk I/O error", then "database disk image is malformed").
    Here: while a connection reads, another process must not be able to leave WAL mode."""
    from django.db import connections

    from tarifa.sqlite_backend.base import DatabaseWrapper

    path = tmp_path / "db.sqlite3"
    params = dict(connections["default"].settings_dict, NAME=str(path))
    first = DatabaseWrapper(params, alias="first")
    first.ensure_connection()
    first.connection.execute("PRAGMA journal_mode=WAL")
    first.connection.execute("CREATE TABLE t (x integer)")
    first.connection.execute("INSERT INTO t VALUES (1)")
    assert first.connection.execute("SELECT count(*) FROM t").fetchone() == (1,)
    first.connection.execute("BEGIN")
    assert first.connection.execute("SELECT count(*) FROM t").fetchone() == (1,)  # reading: a shared lock
    second = DatabaseWrapper(params, alias="second")
    second.ensure_connection()  # another thread's connection, in the same process
    # another process must not be able to take the database from under the reader
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; c = sqlite3.connect({str(path)!r}, timeout=0); "
            "c.execute('PRAGMA journal_mode=DELETE'); print(c.execute('PRAGMA journal_mode').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert done.stdout.strip() != "delete" and "database is locked" in done.stderr, done.stdout + done.stderr
        first.connection.execute("COMMIT")
        first.connection.execute("INSERT INTO t VALUES (2)")
        assert second.connection.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        second.close()
        first.close()
