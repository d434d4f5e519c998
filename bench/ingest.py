"""CDR ingestion throughput with balance posting: 1,000,000 canonical CDRs for 1,000 accounts.

Runs on a fresh SQLite file and, when TARIFA_BENCH_PG is set (a postgres:// URL of a server
this user may create databases on), on PostgreSQL too. Prints CDR/s for each.

    .venv/bin/python bench/ingest.py [--cdrs 1000000] [--accounts 1000] [--pg postgres://postgres@127.0.0.1:55432/postgres]
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
from tarifa.core.cdr import CanonicalCdr
from tarifa.core import worlddeck
from tarifa.customers.models import Account, Customer, SipDevice
from tarifa.rating.models import Rate, Tariff
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.billing.models import Transaction
from django.db.models import Sum

n_cdrs, n_accounts, from_file, batch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "file", int(sys.argv[4])
tariff = Tariff.objects.create(name="World")
Rate.objects.bulk_create([Rate(tariff=tariff, prefix=d.prefix, destination=d.name, **worlddeck.price_for(d))
                          for d in worlddeck.world_destinations()])
operator = Customer.objects.create(kind="operator", name="Op", company="Op", web_username="op", tariff=tariff,
                                   email="o@o.example", phone="+12015550123", country="US")
customers = Customer.objects.bulk_create([
    Customer(parent=operator, name=f"C{n}", company=f"C{n}", web_username=f"c{n}", tariff=tariff, account_code=f"C{n:07d}",
             path=f"{operator.path}C{n:07d}/", email="c@c.example", phone="+12015550123", country="US")
    for n in range(n_accounts // 2)])
accounts = Account.objects.bulk_create([
    Account(customer=customers[n % len(customers)], name=f"a{n}", account_code=f"A{n:07d}", dialing_mode="e164")
    for n in range(n_accounts)])
SipDevice.objects.bulk_create([SipDevice(account=a, login=f"u{n}", secret="s") for n, a in enumerate(accounts)])
prefixes = [d.prefix for d in worlddeck.world_destinations()]
t0 = datetime(2026, 3, 1, tzinfo=UTC)

def cdrs():
    for n in range(n_cdrs):
        p = prefixes[(n * 7919) % len(prefixes)]
        yield CanonicalCdr(call_id=f"bench-{n}", callee=(p + "123456789012")[:12], start_time=t0 + timedelta(seconds=n % 2_500_000),
                           duration=(n * 37) % 3600, switch="bench", sip_user=f"u{n % n_accounts}")

profile = None
if os.environ.get("BENCH_PROFILE"):  # a file name: cProfile statistics of the timed part go there
    import cProfile
    profile = cProfile.Profile()
    profile.enable()
if from_file:
    # The whole path of `tarifa cdr import --format tarifa`: canonical CSV text -> parse -> ingest.
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "cdrs.csv")
    with open(path, "w") as out:
        out.write("call_id,callee,start_time,duration,sip_user\n")
        for c in cdrs():
            out.write(f"{c.call_id},{c.callee},{c.start_time.isoformat()},{c.duration},{c.sip_user}\n")
    from tarifa.cdrs.columns import read_canonical_csv
    from tarifa.cdrs.ingest import ingest_frames
    start, cpu = time.perf_counter(), time.process_time()
    text = open(path).read()
    report = ingest_frames(read_canonical_csv(text, switch="bench", chunk_lines=batch), source=path, fmt="tarifa",
                           switch="bench")
else:
    start, cpu = time.perf_counter(), time.process_time()
    report = ingest(cdrs(), source="bench", fmt="bench", switch="bench", batch_size=batch, parallel=True)
took, cpu = time.perf_counter() - start, time.process_time() - cpu
if profile:
    profile.disable()
    profile.dump_stats(os.environ["BENCH_PROFILE"])
balance = Customer.objects.aggregate(s=Sum("balance"))["s"]
ledger = Transaction.objects.aggregate(s=Sum("amount"))["s"]
print(json.dumps({"vendor": connection.vendor + (" (from CSV file)" if from_file else " (in memory)"), "cdrs": report.stored, "seconds": round(took, 2), "cpu_seconds": round(cpu, 2),
                  "cdr_per_s": round(report.stored / took), "transactions": Transaction.objects.count(),
                  "balances_equal_ledger": balance == ledger}))
"""


def run(url: str, cdrs: int, accounts: int, var: str, mode: str, batch: int) -> dict:
    env = dict(os.environ, TARIFA_DATABASE_URL=url, TARIFA_VAR_DIR=var)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(cdrs), str(accounts), mode, str(batch)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--pg", default=os.environ.get("TARIFA_BENCH_PG", ""))
    parser.add_argument("--batch", type=int, default=20_000, help="CDRs per database transaction")
    parser.add_argument("--only", choices=("sqlite", "pg"), default=None)
    args = parser.parse_args()
    var = tempfile.mkdtemp(prefix="tarifa-bench-")
    print(f"ingest bench: {args.cdrs:,} CDRs, {args.accounts:,} accounts, {os.cpu_count()} cores")
    results = []
    for mode in ("memory", "file") if args.only != "pg" else ():
        results.append(run(new_sqlite(f"{var}/ingest-{mode}.sqlite3"), args.cdrs, args.accounts, var, mode, args.batch))
    if args.pg and args.only != "sqlite":
        import psycopg

        for mode in ("memory", "file"):
            name = f"tarifa_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                results.append(
                    run(args.pg.rsplit("/", 1)[0] + "/" + name, args.cdrs, args.accounts, var, mode, args.batch)
                )
            finally:
                # No `continue` here: in a `finally` it would swallow the run's exception.
                if os.environ.get("BENCH_KEEP_DB"):
                    print(f"kept database {name}")
                else:
                    with psycopg.connect(args.pg, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for r in results:
        print(
            f"{r['vendor']:>30}: {r['cdrs']:,} CDRs in {r['seconds']} s = {r['cdr_per_s']:,} CDR/s "
            f"(importer CPU {r['cpu_seconds']} s; {r['transactions']:,} transactions; balances equal ledger: {r['balances_equal_ledger']})"
        )


if __name__ == "__main__":
    main()
