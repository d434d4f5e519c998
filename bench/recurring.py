"""Recurring charges for 100,000 services (issue 14): one month-end run of the charge worker.

The services are split evenly over accounts (trunks), extensions, IP addresses, DIDs and virtual
numbers of 10,000 customers, on monthly, weekly and daily plans with setup and activation fees,
activated from October 22 to November 30, 2026 (many first periods prorated), a tenth cancelled
in November. First the worker catches up from nothing to November 30 (timed and printed, the
"worker was down" case); then the timed month-end run of December 1 posts each service's
November charge (last week's for weekly plans, November 30's for daily ones), and the same run
again posts nothing. Checks printed: the charges posted equal those the rules say are due, one
Transaction per charge, balances equal the ledger.

Runs on a fresh SQLite file and, when TARIFA_BENCH_PG is set (a postgres:// URL of a server this
user may create databases on) or --pg is given, on PostgreSQL too; target under 60 s on PostgreSQL.

    .venv/bin/python bench/recurring.py [--services 100000] [--pg postgres://postgres@127.0.0.1:55432/postgres]
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
from datetime import date, timedelta
from decimal import Decimal
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
call_command("migrate", verbosity=0)
from tarifa.billing.models import ServiceCharge, ServicePlan, Transaction
from tarifa.services.recurring import due, load_services, run_charges
from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tarifa.dids.models import Did, DidPlan, VirtualNumber
from tarifa.rating.models import Tariff

n_services = int(sys.argv[1])
per_kind = max(1, n_services // 5)
n_customers = max(1, per_kind // 2)
D = Decimal
MONTH, RUN = date(2026, 11, 1), date(2026, 12, 1)
tariff = Tariff.objects.create(name="T")
plans = [ServicePlan.objects.create(name=name, **spec) for name, spec in (
    ("Monthly", dict(recurring_fee=D("30.00"), setup_fee=D("5"), billing_day=1)),
    ("Monthly flat", dict(recurring_fee=D("19.99"), billing_day=1, activation_fee=D("2.50"), prorate=False)),
    ("Monthly small", dict(recurring_fee=D("12.00"), billing_day=1)),
    ("Weekly", dict(period="weekly", recurring_fee=D("7.77"), weekday=1)),  # Tuesdays: Dec 1 2026 is one
    ("Daily", dict(period="daily", recurring_fee=D("0.33"))),
)]
did_plan = DidPlan.objects.create(name="DID", monthly_fee=D("1.50"), setup_fee=D("3.00"))
build = time.perf_counter()
customers = Customer.objects.bulk_create([
    Customer(name=f"C{n}", company=f"C{n}", web_username=f"c{n}", tariff=tariff, account_code=f"C{n:07d}",
             path=f"C{n:07d}/", email="c@c.example", phone="+12015550123", country="US", billing_type="postpaid",
             credit_limit=D("100000")) for n in range(n_customers)], batch_size=5000)

def activation(n):
    return MONTH - timedelta(days=10) + timedelta(days=n % 40)

def cancellation(n):
    return MONTH + timedelta(days=n % 29 + 1) if n % 10 == 7 else None

accounts = Account.objects.bulk_create([
    Account(customer=customers[n % n_customers], name=f"a{n}", account_code=f"A{n:07d}", kind="trunk",
            identifier=f"t{n}", service_plan=plans[n % 5], activation_date=activation(n),
            cancellation_date=cancellation(n)) for n in range(per_kind)], batch_size=5000)
SipDevice.objects.bulk_create([
    SipDevice(account=accounts[n], login=f"u{n}", secret="s", service_plan=plans[(n + 1) % 5],
              activation_date=activation(n + 3), cancellation_date=cancellation(n + 1)) for n in range(per_kind)],
    batch_size=5000)
IpDevice.objects.bulk_create([
    IpDevice(account=accounts[n], address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
             service_plan=plans[(n + 2) % 5], activation_date=activation(n + 7), cancellation_date=cancellation(n + 2))
    for n in range(per_kind)], batch_size=5000)
dids = Did.objects.bulk_create([
    Did(number=f"1{n:010d}", status="assigned", account=accounts[n], plan=did_plan, activation_date=activation(n + 11))
    for n in range(per_kind)], batch_size=5000)
VirtualNumber.objects.bulk_create([
    VirtualNumber(number=f"9{n:08d}", primary_did=dids[n], account=accounts[n], activation_date=activation(n + 13),
                  additional_charge=D("2.00")) for n in range(per_kind)], batch_size=5000)
build = time.perf_counter() - build

services = load_services(RUN)
expected = sum(len(due(s, RUN, None)) for s in services)
EVE = RUN - timedelta(days=1)
start = time.perf_counter()
caught_up = run_charges(EVE)  # the worker until November 30: catching up on everything from nothing
catch_up = time.perf_counter() - start
profile = None
if os.environ.get("BENCH_PROFILE"):  # a file name: cProfile statistics of the timed run go there
    import cProfile
    profile = cProfile.Profile()
    profile.enable()
start, cpu = time.perf_counter(), time.process_time()
first = run_charges(RUN)  # the month-end run: every service's November (or last week's, last day's) charge
took, cpu = time.perf_counter() - start, time.process_time() - cpu
if profile:
    profile.disable()
    profile.dump_stats(os.environ["BENCH_PROFILE"])
start = time.perf_counter()
second = run_charges(RUN)
again = time.perf_counter() - start
refs = Transaction.objects.filter(reference__startswith="svc:").count()
balance = (Customer.objects.aggregate(s=Sum("balance"))["s"] or 0) + (Account.objects.aggregate(s=Sum("balance"))["s"] or 0)
ledger = Transaction.objects.aggregate(s=Sum("amount"))["s"]
print(json.dumps({
    "vendor": connection.vendor, "services": len(services), "customers": n_customers, "build_seconds": round(build, 1),
    "seconds": round(took, 2), "cpu_seconds": round(cpu, 2), "posted": first.posted, "amount": str(first.amount),
    "expected": expected, "charges_rows": ServiceCharge.objects.count(), "transactions": refs,
    "catch_up_posted": caught_up.posted, "catch_up_seconds": round(catch_up, 2),
    "second_run_posted": second.posted, "second_run_seconds": round(again, 2),
    "balances_equal_ledger": balance == ledger,
}))
"""


def run(url: str, services: int, var: str) -> dict:
    env = dict(os.environ, TARIFA_DATABASE_URL=url, TARIFA_VAR_DIR=var)
    done = subprocess.run([sys.executable, "-c", CHILD, str(services)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("TARIFA_BENCH_PG", ""))
    parser.add_argument("--only", choices=("sqlite", "pg"), default=None)
    args = parser.parse_args()
    var = tempfile.mkdtemp(prefix="tarifa-bench-")
    print(f"recurring bench: {args.services:,} services, month-end run for November 2026, {os.cpu_count()} cores")
    results = []
    if args.only != "pg":
        results.append(run(new_sqlite(f"{var}/recurring.sqlite3"), args.services, var))
    if args.pg and args.only != "sqlite":
        import psycopg

        name = f"tarifa_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            results.append(run(args.pg.rsplit("/", 1)[0] + "/" + name, args.services, var))
        finally:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for r in results:
        total = r["catch_up_posted"] + r["posted"]
        ok = total == r["expected"] == r["charges_rows"] == r["transactions"] and r["second_run_posted"] == 0
        target = " (target < 60 s: met)" if r["seconds"] < 60 else " (target < 60 s: NOT met)"
        print(f"{r['vendor']:>10}: {r['services']:,} services of {r['customers']:,} customers")
        print(
            f"{'':>10}  catching up Oct 22 - Nov 30 from nothing: {r['catch_up_posted']:,} charges in "
            f"{r['catch_up_seconds']} s (setup {r['build_seconds']} s, not timed)"
        )
        print(
            f"{'':>10}  month-end run Dec 1: {r['posted']:,} charges (total {r['amount']}) for {r['services']:,} "
            f"services in {r['seconds']} s = {round(r['services'] / r['seconds']):,} services/s"
            f"{target if r['vendor'] == 'postgresql' else ''} (CPU of the process {r['cpu_seconds']} s)"
        )
        print(
            f"{'':>10}  second run: {r['second_run_posted']} posted in {r['second_run_seconds']} s; "
            f"charges due by the rules {r['expected']:,}, ServiceCharge rows {r['charges_rows']:,}, "
            f"transactions {r['transactions']:,}: {'agree' if ok else 'DISAGREE'}; "
            f"balances equal ledger: {r['balances_equal_ledger']}"
        )
        if not ok or not r["balances_equal_ledger"]:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
