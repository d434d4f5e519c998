"""The low-balance check over 100,000 customers (issue 15): how long one check takes when 1 % of
the customers (and 1 % of their accounts) are below their threshold.

Every customer has a low-balance threshold (notice settings) and one account with the seed 001
balance threshold; balances are set so that one customer in a hundred, and one account in a
hundred, is below. The timed runs: the first check of the day (queues a notice per candidate,
SMTP not involved), the same check again (queues nothing: once a day), and a check the next day
(queues them again). Checks printed: notices queued equal the candidates below threshold.

Runs on a fresh SQLite file and, when TARIFA_BENCH_PG is set (a postgres:// URL of a server this
user may create databases on) or --pg is given, on PostgreSQL too.

    .venv/bin/python bench/notices.py [--customers 100000] [--pg postgres://postgres@127.0.0.1:55432/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid

from _common import new_sqlite

CHILD = r"""
import json, os, sys, time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from tarifa.customers.models import Account, Customer
from tarifa.notices.checks import check_low_balances
from tarifa.notices.models import NoticeSettings, Outbox
from tarifa.rating.models import Tariff

n = int(sys.argv[1])
D = Decimal
tariff = Tariff.objects.create(name="T")
build = time.perf_counter()
customers = Customer.objects.bulk_create([
    Customer(name=f"C{i}", company=f"C{i}", web_username=f"c{i}", tariff=tariff, account_code=f"C{i:07d}",
             path=f"C{i:07d}/", email=f"c{i}@c.example", phone="+12015550123", country="US",
             billing_type="postpaid" if i % 2 else "prepaid", credit_limit=D("50") if i % 2 else D(0),
             balance=(D("-48") if i % 2 else D("2")) if i % 100 == 0 else D("100"))
    for i in range(n)], batch_size=5000)
NoticeSettings.objects.bulk_create([NoticeSettings(customer=c, low_balance_threshold=D("10")) for c in customers],
                                   batch_size=5000)
Account.objects.bulk_create([
    Account(customer=c, name=f"a{i}", account_code=f"A{i:07d}", balance_mode="own" if i % 100 == 1 else "shared",
            balance=D("-48") if i % 100 == 1 else D(0), balance_threshold=D("3"))
    for i, c in enumerate(customers)], batch_size=5000)
build = time.perf_counter() - build
# below: every 100th customer (funds 2 < 10) and its shared account (2 < 3), and the own-balance
# account of the next customer (postpaid: -48 + 50 = 2 < 3)
expected = sum(1 for i in range(n) if i % 100 == 0) * 2 + sum(1 for i in range(n) if i % 100 == 1)
now = datetime(2026, 12, 7, 9, tzinfo=UTC)
start = time.perf_counter()
first = check_low_balances(now)
first_s = time.perf_counter() - start
start = time.perf_counter()
second = check_low_balances(now + timedelta(hours=1))
second_s = time.perf_counter() - start
start = time.perf_counter()
third = check_low_balances(now + timedelta(days=1))
third_s = time.perf_counter() - start
print(json.dumps({
    "vendor": connection.vendor, "customers": n, "build_seconds": round(build, 1), "expected": expected,
    "first": first, "first_seconds": round(first_s, 2), "second": second, "second_seconds": round(second_s, 2),
    "next_day": third, "next_day_seconds": round(third_s, 2), "outbox": Outbox.objects.count(),
}))
"""


def run(url: str, customers: int, var: str) -> dict:
    env = dict(os.environ, TARIFA_DATABASE_URL=url, TARIFA_VAR_DIR=var)
    done = subprocess.run([sys.executable, "-c", CHILD, str(customers)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("TARIFA_BENCH_PG", ""))
    parser.add_argument("--only", choices=("sqlite", "pg"), default=None)
    args = parser.parse_args()
    var = tempfile.mkdtemp(prefix="tarifa-bench-")
    print(f"notices bench: low-balance check over {args.customers:,} customers and accounts, {os.cpu_count()} cores")
    results = []
    if args.only != "pg":
        results.append(run(new_sqlite(f"{var}/notices.sqlite3"), args.customers, var))
    if args.pg and args.only != "sqlite":
        import psycopg

        name = f"tarifa_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            results.append(run(args.pg.rsplit("/", 1)[0] + "/" + name, args.customers, var))
        finally:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for r in results:
        ok = r["first"] == r["expected"] == r["next_day"] and r["second"] == 0 and r["outbox"] == 2 * r["expected"]
        print(f"{r['vendor']:>10}: {r['customers']:,} customers and accounts (setup {r['build_seconds']} s, not timed)")
        print(
            f"{'':>10}  first check: {r['first']:,} notices queued in {r['first_seconds']} s; same day again: "
            f"{r['second']} in {r['second_seconds']} s; next day: {r['next_day']:,} in {r['next_day_seconds']} s; "
            f"below threshold {r['expected']:,}: {'agree' if ok else 'DISAGREE'}"
        )
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
