"""Migrations are complete and apply from zero on the database under test (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_no_model_change_without_a_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_migrations_apply_from_zero_on_a_fresh_database(tmp_path: Path) -> None:
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path))
    if connection.vendor == "postgresql":
        import psycopg

        settings = connection.settings_dict
        name = f"tarifa_fresh_{uuid.uuid4().hex[:8]}"
        dsn = f"host={settings['HOST']} port={settings['PORT']} user={settings['USER']} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        env["TARIFA_DATABASE_URL"] = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"
    else:
        name = ""
        env["TARIFA_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tarifa.cli", "migrate"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert "Applying customers.0001_initial... OK" in done.stdout
        check = subprocess.run(
            [sys.executable, "-m", "tarifa.cli", "manage", "migrate", "--check"], env=env, capture_output=True,
            text=True, timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        if name:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
