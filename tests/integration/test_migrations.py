"""Migrations are complete and apply from zero on the database under test (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import run_tarifa


@pytest.mark.django_db
def test_no_model_change_without_a_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_migrations_apply_from_zero_on_a_fresh_database(tmp_path: Path, fresh_database_url: str) -> None:
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path), TARIFA_DATABASE_URL=fresh_database_url)
    done = run_tarifa(env, "migrate")
    assert done.returncode == 0, done.stderr
    assert "Applying customers.0001_initial... OK" in done.stdout
    check = run_tarifa(env, "manage", "migrate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
