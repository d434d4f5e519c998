"""Databases for the processes the tests start (``tarifa`` commands, servers, benchmark scripts).

Migrating a database from zero costs 8-16 s of CPU (most of it Django rendering the migration
states of 60-odd migrations), as much as a hundred ordinary tests. So each test process migrates
one template once, with a real ``tarifa migrate`` (the migrations test reads what it printed),
and every test that needs a migrated database of its own gets a copy: the file copied on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. Tests about migrating itself (from
zero, part of the way, back and forth) still start from an empty database
(``fresh_database_url`` in conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class MigratedTemplate:
    url: str  # a migrated database that no test changes
    sqlite_file: Path | None  # its file on SQLite, None on PostgreSQL
    migrate_stdout: str  # what ``tarifa migrate`` printed while building it from zero
    migrate_stderr: str


@contextlib.contextmanager
def postgres_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on the PostgreSQL server under test (empty, or a copy of the database named
    ``template``), dropped afterwards; its URL."""
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    dsn = f"host={s['HOST']} port={s['PORT']} user={s['USER']} dbname=postgres"
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str, var: Path) -> tuple[str, str]:
    from tests.conftest import run_tarifa

    done = run_tarifa(dict(os.environ, TARIFA_VAR_DIR=str(var), TARIFA_DATABASE_URL=url), "migrate")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, done.stderr


def copy_sqlite(template: Path, copy: Path) -> str:
    """Copy a SQLite database (with SQLite's backup API: whatever its journal holds comes along); its URL."""
    with contextlib.closing(sqlite3.connect(template)) as source, contextlib.closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    return f"sqlite:///{copy}"


def count_rows(url: str, table: str) -> int:
    """Rows in ``table`` of the database at ``url`` (another process's), read over a connection of its
    own: cheap enough to poll while that process writes."""
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)) as db:
            return int(db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as db:
        row = db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
        return int(row[0]) if row else 0


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> MigratedTemplate:
    """A SQLite database migrated from zero by ``tarifa migrate``, once per test process, whatever the
    database under test (some tests serve a SQLite file of their own on purpose)."""
    where = tmp_path_factory.mktemp("sqlite-template")
    file = where / "template.sqlite3"
    out, err = _migrate(f"sqlite:///{file}", where)
    return MigratedTemplate(f"sqlite:///{file}", file, out, err)


@pytest.fixture(scope="session")
def migrated_template(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[MigratedTemplate]:
    """A database of the kind under test migrated from zero by ``tarifa migrate``, once per test process."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield request.getfixturevalue("sqlite_template")
        return
    with postgres_database("tarifa_template") as url:
        out, err = _migrate(url, tmp_path_factory.mktemp("postgresql-template"))
        yield MigratedTemplate(url, None, out, err)


@contextlib.contextmanager
def migrated_copy(template: MigratedTemplate, directory: Path) -> Iterator[str]:
    """A copy of the migrated template (a file in ``directory`` on SQLite), dropped afterwards; its URL."""
    if template.sqlite_file is not None:
        yield copy_sqlite(template.sqlite_file, directory / f"migrated-{uuid.uuid4().hex[:8]}.sqlite3")
        return
    with postgres_database("tarifa_migrated", template=template.url.rsplit("/", 1)[1]) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory, migrated_template: MigratedTemplate) -> Iterator[str]:
    """A migrated database of the kind under test shared by one test module (a server per module)."""
    with migrated_copy(migrated_template, tmp_path_factory.mktemp("module-db")) as url:
        yield url


@pytest.fixture
def migrated_database_url(tmp_path: Path, migrated_template: MigratedTemplate) -> Iterator[str]:
    """A migrated database of the kind under test for this test alone (a copy of the template)."""
    with migrated_copy(migrated_template, tmp_path) as url:
        yield url


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, sqlite_template: MigratedTemplate) -> str:
    """A migrated SQLite database for this test alone, whatever the database under test."""
    assert sqlite_template.sqlite_file is not None
    return copy_sqlite(sqlite_template.sqlite_file, tmp_path / f"migrated-{uuid.uuid4().hex[:8]}.sqlite3")


#: The in-memory SQLite database Django's test runner would make (shared between the connections of
#: this process, alive while one of them is open).
_SQLITE_TEST_NAME = "file:memorydb_default?mode=memory&cache=shared"


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None,
    django_db_blocker: Any,
    migrated_template: MigratedTemplate,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The in-process tests' database: a copy of the session's migrated template (in memory on SQLite,
    ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL) instead of pytest-django migrating a second
    database from zero in this process (15-30 s of CPU per pass). The template was migrated by
    ``tarifa migrate``, the command an operator runs, so the tests run on what it makes."""
    from django.conf import settings
    from django.db import connection

    def use(name: str) -> None:
        connection.close()
        settings.DATABASES["default"]["NAME"] = name
        connection.settings_dict["NAME"] = name

    original = connection.settings_dict["NAME"]
    if migrated_template.sqlite_file is not None:
        with django_db_blocker.unblock():
            use(_SQLITE_TEST_NAME)
            connection.ensure_connection()
            with contextlib.closing(sqlite3.connect(migrated_template.sqlite_file)) as source:
                source.backup(connection.connection)
        yield
        with django_db_blocker.unblock():
            use(original)
        return
    with postgres_database("test_tarifa", template=migrated_template.url.rsplit("/", 1)[1]) as url:
        with django_db_blocker.unblock():
            use(url.rsplit("/", 1)[1])
        yield
        with django_db_blocker.unblock():
            use(original)
