"""Django made ready for a command-line process: the one start-up every ``tarifa`` command shares.

It sits below both ``tarifa.cli`` and the commands that live in the apps (``cdrs/commands.py``
and the others), so those import it instead of importing the command-line entry point that
imports them (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import os
from typing import NoReturn

import typer


def start_django(database: bool = True) -> None:
    """Configure Django. With ``database`` (every command but ``migrate`` and ``manage``), first make
    sure the database exists and is migrated, and say where it was looked for when it is not --
    without creating an empty ``./var`` on the way."""
    from django.apps import apps

    from tarifa import config

    if apps.ready:  # configured already (a command run inside a configured process, as the tests do)
        return
    config.check_all()  # every TARIFA_* value, before the database is looked at (a bad one: exit 2, named)
    embedded = config.embedded_database()
    if database and embedded is not None and not embedded.exists():
        _no_database(f"No database at {embedded}.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()
    if database:
        _check_migrated()


def _where() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"the database at {s['NAME']}"
    return f"the database {s['NAME']!r} on {s.get('HOST') or 'localhost'}:{s.get('PORT') or 5432}"


def _no_database(problem: str) -> NoReturn:
    from tarifa import config

    typer.echo(
        f"{problem} Run `tarifa migrate` to create it, or point TARIFA_DATABASE_URL (or TARIFA_VAR_DIR, "
        f"now {str(config.var_path())!r}) at the existing one.",
        err=True,
    )
    raise typer.Exit(2)


def _check_migrated() -> None:
    from django.db import DatabaseError, connection
    from django.db.migrations.loader import MigrationLoader

    try:
        loader = MigrationLoader(connection)
        pending = len(set(loader.graph.nodes) - set(loader.applied_migrations))
    except DatabaseError as exc:
        _no_database(f"Cannot read {_where()}: {exc}.")
    if pending:
        _no_database(f"{_where()[0].upper()}{_where()[1:]} is not migrated ({pending} migrations pending).")
