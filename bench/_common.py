"""Helpers shared by the benchmark scripts (imported as ``_common``: a script started as
``python bench/x.py`` has bench/ first on its path)."""

from __future__ import annotations

import contextlib
import os
import sqlite3


def new_sqlite(path: str) -> str:
    """The URL of a new SQLite database at ``path``: a copy of BENCH_SQLITE_TEMPLATE (a migrated SQLite
    file) when that is set, as the smoke tests do to spare a migration from zero; empty otherwise."""
    template = os.environ.get("BENCH_SQLITE_TEMPLATE")
    if template:
        with contextlib.closing(sqlite3.connect(template)) as source, contextlib.closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
    return f"sqlite:///{path}"
