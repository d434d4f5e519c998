"""Exactly once, for real: an import killed with SIGKILL half-way and re-run, and (PostgreSQL) two
importers on overlapping files at the same time. Each CDR is stored and charged once, and every
balance equals the sum of its Transactions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from tarifa.cdrs.models import Cdr
from tests.databases import count_rows
from tests.e2e.ingest_world import write_cdrs

HERE = Path(__file__).parent
TOTAL = 100_000


def _env(tmp_path: Path, url: str) -> dict:
    return dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp_path),
        TARIFA_DATABASE_URL=url,
        PYTHONPATH=os.pathsep.join([str(HERE.parent.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    )


def _world(env: dict) -> None:
    """The world of ingest_world.py in the (migrated) database of ``env``."""
    done = subprocess.run(
        [sys.executable, str(HERE / "ingest_world.py"), "setup"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _check(env: dict) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "ingest_world.py"), "check"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _count(env: dict) -> int:
    return count_rows(env["TARIFA_DATABASE_URL"], Cdr._meta.db_table)


def _assert_exactly_once(books: dict, total: int) -> None:
    assert books["cdrs"] == total and books["distinct_calls"] == total
    assert books["charged_cdrs"] > 0 and books["charged_cdrs_without_charge"] == 0
    assert books["charge_transactions"] > 0 and books["charges_not_matching_their_calls"] == 0
    assert Decimal(books["price_total"]) == Decimal(books["ledger_total"]) > 0
    assert books["balances_equal_ledger"] is True


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_import_killed_half_way_then_rerun_charges_each_call_once(tmp_path: Path, migrated_database_url: str) -> None:
    env = _env(tmp_path, migrated_database_url)
    _world(env)
    cdrs = tmp_path / "cdrs.csv"
    write_cdrs(str(cdrs), 0, TOTAL)
    args = [
        sys.executable,
        "-m",
        "tarifa.cli",
        "cdr",
        "import",
        str(cdrs),
        "--format",
        "tarifa",
        "--switch",
        "sw",
        "--batch-size",
        "2000",
    ]
    importer = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    stored = 0
    while time.monotonic() < deadline and importer.poll() is None:
        stored = _count(env)
        if stored >= TOTAL // 4:
            break
        time.sleep(0.05)
    assert importer.poll() is None, "the import finished before it could be killed"
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    partial = _count(env)
    assert 0 < partial < TOTAL, partial
    books = _check(env)
    assert books["cdrs"] == partial and books["charges_not_matching_their_calls"] == 0
    assert books["charged_cdrs_without_charge"] == 0 and books["balances_equal_ledger"]
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{TOTAL - partial} stored, {partial} duplicates" in rerun.stdout
    _assert_exactly_once(_check(env), TOTAL)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_importers_on_overlapping_files(tmp_path: Path, migrated_database_url: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL deployment; SQLite serialises writers by design")
    env = _env(tmp_path, migrated_database_url)
    _world(env)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write_cdrs(str(first), 0, 60_000)
    write_cdrs(str(second), 30_000, 90_000)  # 30,000 calls in both files
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tarifa.cli",
                "cdr",
                "import",
                str(path),
                "--format",
                "tarifa",
                "--switch",
                "sw",
                "--batch-size",
                "1000",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for path in (first, second)
    ]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    _assert_exactly_once(_check(env), 90_000)
