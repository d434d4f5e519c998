"""Migrations are complete and apply from zero on the database under test (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import run_tarifa
from tests.databases import MigratedTemplate


@pytest.mark.django_db
def test_no_model_change_without_a_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_migrations_apply_from_zero_on_a_fresh_database(tmp_path: Path, migrated_template: MigratedTemplate) -> None:
    """The session's template database (tests/databases.py) is this test's fresh database: an empty
    database migrated from zero by ``tarifa migrate``; here, what that printed and a check after it."""
    assert "Applying customers.0001_initial... OK" in migrated_template.migrate_stdout, (
        migrated_template.migrate_stdout + migrated_template.migrate_stderr
    )
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path), TARIFA_DATABASE_URL=migrated_template.url)
    check = run_tarifa(env, "manage", "migrate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.django_db
def test_the_authorisation_migration_goes_back_and_forth_keeping_reservations(
    tmp_path: Path, migrated_database_url: str
) -> None:
    """calls 0006 (one-statement authorisation, reservation constraints and indexes) reverses and
    applies again on an existing (migrated) database, and a reservation held meanwhile stays."""
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path), TARIFA_DATABASE_URL=migrated_database_url)
    hold = (
        "from datetime import UTC, datetime; from decimal import Decimal; "
        "from tarifa.customers.models import Account, Customer; from tarifa.calls.models import Reservation; "
        "from tarifa.rating.models import Tariff; "
        "c = Customer.objects.create(name='M', company='M Ltd', web_username='m', email='m@m.example', "
        "tariff=Tariff.objects.create(name='T')); "
        "a = Account.objects.create(customer=c, name='m'); now = datetime.now(UTC); "
        "Reservation.objects.create(switch='sw', call_id='kept', customer=c, account=a, amount=Decimal('1.5'), "
        "max_duration=60, created_at=now, expires_at=now)"
    )
    done = run_tarifa(env, "manage", "shell", "-c", hold)
    assert done.returncode == 0, done.stdout + done.stderr

    def functions() -> set[str]:
        probe = run_tarifa(
            env,
            "manage",
            "shell",
            "-c",
            (
                "from django.db import connection\n"
                "if connection.vendor == 'postgresql':\n"
                "    c = connection.cursor(); c.execute(\"SELECT proname FROM pg_proc WHERE proname LIKE 'tarifa_call_%'\")\n"
                "    print(sorted(r[0] for r in c.fetchall()))\n"
                "from tarifa.calls.models import Reservation\n"
                "print(list(Reservation.objects.values_list('call_id', 'amount')))"
            ),
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        return set(probe.stdout.split("\n")[:-1])

    forward = functions()
    back = run_tarifa(env, "manage", "migrate", "calls", "0005")
    assert back.returncode == 0, back.stdout + back.stderr
    backward = functions()
    again = run_tarifa(env, "manage", "migrate", "calls")
    assert again.returncode == 0, again.stdout + again.stderr
    assert functions() == forward
    kept = "[('kept', Decimal('1.500000'))]"
    assert kept in forward and kept in backward, (forward, backward)
    if any("tarifa_call_" in line for line in forward):  # PostgreSQL: the function comes and goes
        assert "['tarifa_call_authorize', 'tarifa_call_reserve', 'tarifa_call_state']" in forward
        assert "['tarifa_call_reserve', 'tarifa_call_state']" in backward


@pytest.mark.django_db
def test_the_did_inventory_migration_derives_area_codes_of_stored_numbers(
    tmp_path: Path, migrated_database_url: str
) -> None:
    """dids 0003 adds porting/quarantined, area code and local number: DIDs stored before it get
    theirs from libphonenumber, and their statuses keep their values. (The database goes back to
    dids 0002 from the migrated template, which also shows the later dids migrations reverse.)"""
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path), TARIFA_DATABASE_URL=migrated_database_url)
    assert run_tarifa(env, "manage", "migrate", "dids", "0002").returncode == 0
    old = run_tarifa(
        env,
        "manage",
        "shell",
        "-c",
        (
            "from django.db import connection\n"
            "from django.db.migrations.executor import MigrationExecutor\n"
            "apps = MigrationExecutor(connection).loader.project_state(('dids', '0002_validated_mac_address')).apps\n"
            "Did = apps.get_model('dids', 'Did')\n"
            "Did.objects.create(number='12125551234', status='disabled')\n"
            "Did.objects.create(number='442079460958')\n"
        ),
    )
    assert old.returncode == 0, old.stdout + old.stderr
    assert run_tarifa(env, "migrate").returncode == 0
    probe = run_tarifa(
        env,
        "manage",
        "shell",
        "-c",
        (
            "from tarifa.dids.models import Did\n"
            "print(list(Did.objects.order_by('number').values_list('number', 'country', 'area_code', 'local_number', 'status')))"
        ),
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == str(
        [("12125551234", "US", "212", "5551234", "disabled"), ("442079460958", "GB", "20", "79460958", "available")]
    )
