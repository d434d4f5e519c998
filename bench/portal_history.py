"""The portal's call history on a large table (issue 16): keyset pages stay as fast deep as at the top.

One customer with --cdrs calls (default 1,000,000) over 100 days, among --others calls of other
customers, on a fresh SQLite file and, with --pg (or TARIFA_BENCH_PG), on PostgreSQL too. Timed,
each the median of 5 runs: the first page, a page half-way down (by its keyset cursor, as the
"older calls" link carries it), the last page, the totals of the default 31 days, and a number
filter over those days. Checked: the deep page starts right after the row its cursor names.

    .venv/bin/python bench/portal_history.py [--cdrs 1000000] [--others 200000] [--pg postgres://...]
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
import json, os, statistics, sys, time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from tarifa.cdrs.models import Cdr
from tarifa.customers.models import Account, Customer
from tarifa.portal import history
from tarifa.rating.models import Tariff

mine, others = int(sys.argv[1]), int(sys.argv[2])
tariff = Tariff.objects.create(name="T")
people = [Customer.objects.create(name=f"C{n}", company=f"C{n}", web_username=f"c{n}", tariff=tariff,
                                  email="c@c.example", phone="+12015550123", country="US") for n in range(3)]
accounts = [Account.objects.create(customer=c, name=f"a{c.pk}") for c in people]
end = datetime(2026, 12, 1, tzinfo=UTC)
build = time.perf_counter()
def rows(count, who, start):
    for n in range(count):
        c = who[n % len(who)]
        yield Cdr(switch="s", call_id=f"{c.pk}-{start + n}", customer_id=c.pk, account_id=accounts[people.index(c)].pk,
                  callee=f"0114420{(start + n) % 10**7:07d}", caller="12015550123",
                  start_time=end - timedelta(seconds=(start + n) * 8_640_000 // max(1, count)),
                  duration=60, price=Decimal("0.0200"), rating_status="rated", destination="United Kingdom")
def load(count, who, start):
    batch = []
    for cdr in rows(count, who, start):
        batch.append(cdr)
        if len(batch) == 20000:
            Cdr.objects.bulk_create(batch); batch = []
    if batch:
        Cdr.objects.bulk_create(batch)
load(mine, people[:1], 0)
load(others, people[1:], mine)
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cdrs_cdr")
built = time.perf_counter() - build
me = people[0]

def timed(fn):
    runs = []
    for _ in range(5):
        t = time.perf_counter(); out = fn(); runs.append(time.perf_counter() - t)
    return statistics.median(runs) * 1000, out

everything = history.filtered(me, {})
first_ms, first = timed(lambda: history.page(everything, None))
middle_row = everything.order_by("-start_time", "-pk")[mine // 2]  # OFFSET only to find the cursor, untimed
cursor = history.parse_cursor(history.cursor_of(middle_row))
deep_ms, deep = timed(lambda: history.page(everything, cursor))
expected = list(everything.order_by("-start_time", "-pk").values_list("pk", flat=True)[mine // 2 + 1: mine // 2 + 1 + history.PAGE_SIZE])
assert [r.pk for r in deep.rows] == expected, "the deep page does not follow its cursor"
last_row = everything.order_by("start_time", "pk")[min(mine - 1, history.PAGE_SIZE)]
last_ms, _ = timed(lambda: history.page(everything, history.parse_cursor(history.cursor_of(last_row))))
start, stop = history.default_range(me, end - timedelta(days=1))
month = history.filtered(me, {"date_from": start, "date_to": stop})
totals_ms, totals = timed(lambda: history.totals(month))
number_ms, _ = timed(lambda: history.page(history.filtered(me, {"date_from": start, "date_to": stop, "number": "4420123"}), None))
print(json.dumps({"vendor": connection.vendor, "cdrs": mine, "others": others, "load_s": round(built, 1),
                  "first_page_ms": round(first_ms, 2), "middle_page_ms": round(deep_ms, 2),
                  "last_page_ms": round(last_ms, 2), "totals_31_days_ms": round(totals_ms, 1),
                  "totals_31_days_calls": totals.calls, "number_filter_ms": round(number_ms, 1)}))
"""


def _run(url: str, mine: int, others: int) -> dict[str, object]:
    env = dict(os.environ, TARIFA_DATABASE_URL=url)
    env.setdefault("TARIFA_VAR_DIR", tempfile.mkdtemp(prefix="tarifa-bench-"))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(mine), str(others)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--others", type=int, default=200_000)
    parser.add_argument("--pg", default=os.environ.get("TARIFA_BENCH_PG"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(_run(new_sqlite(f"{tmp}/bench.sqlite3"), args.cdrs, args.others)))
    if args.pg:
        import psycopg

        name = f"tarifa_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            print(json.dumps(_run(args.pg.rsplit("/", 1)[0] + "/" + name, args.cdrs, args.others)))
        finally:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
