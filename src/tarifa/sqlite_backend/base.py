"""Django's SQLite backend whose database files only their owner can read (issue 12 item 4).

The database holds the session table (an admin's session is the admin), so a file readable by
every local user was a way in. The file is created 600 before SQLite opens it (SQLite would
create it with the process umask, usually 644), and at every new connection the database and
its ``-wal``, ``-shm`` and ``-journal`` files are set to 600 if they are not already: SQLite
gives the WAL and SHM files it creates later the database file's permissions, and a database
made by an older Tarifa is tightened the first time it is opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base

_PRIVATE = 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _file(database: object) -> Path | None:
    name = str(database)
    if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        return None
    return Path(name)


def make_private(path: Path) -> None:
    """chmod 600 the database and its companion files that exist and belong to us."""
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            info = companion.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            companion.chmod(_PRIVATE)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        path = _file(conn_params.get("database", ""))
        if path is not None and path.parent.is_dir():
            if not path.exists():
                # An empty file is a new database. Only then: closing a descriptor of an open database
                # drops every POSIX lock this process holds on it (SQLite's locks), so another thread's
                # connection would be left unlocked -- "disk I/O error", then a corrupted database.
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE))
            make_private(path)
        connection = super().get_new_connection(conn_params)
        if path is not None:
            make_private(path)  # the WAL and SHM files the init command has just created
        return connection
