"""Management API list pages over many customers and CDRs, through the real HTTP server.

    PYTHONPATH=src python bench/api.py                                   # 100,000 customers, 1,000,000 CDRs, SQLite
    PYTHONPATH=src python bench/api.py --database-url postgres://postgres@127.0.0.1:55432/bench_api
    PYTHONPATH=src python bench/api.py --customers 2000 --cdrs 20000     # the smoke size

Makes a fresh database (a new SQLite file, or drops and creates the PostgreSQL database named in the
URL), fills it fast (bulk inserts: 1 operator, resellers, customers below them, one account each, CDRs
spread over the accounts and 30 days), starts ``tarifa serve`` on a free loopback port, and times the
first, middle and last page of each list (cursor pagination: the middle and last cursors are read from
the database before timing, as a client that walked there would hold them; each timed request of a
middle or last page asks for a different page, 53 rows apart, so none is answered from rows an earlier
request just read) for an operator token and a
reseller's token. Prints p50/p95 per page in milliseconds, and whether each is under the 50 ms target.
Each request is timed on one keep-alive connection (``http.client``), client and server on one machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import new_sqlite

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh(url: str | None, tmp: Path, reuse: bool) -> str:
    if url is None:
        return new_sqlite(str(tmp / "bench_api.sqlite3"))
    import psycopg

    head, name = url.rsplit("/", 1)
    if reuse:
        return url
    with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url


def _code(prefix: str, n: int) -> str:
    digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    out = ""
    for _ in range(7):
        n, r = divmod(n, len(digits))
        out = digits[r] + out
    return prefix + out


def fill(customers: int, cdrs: int, resellers: int) -> dict[str, Any]:
    """Bulk-insert the data set; returns the tokens and what the timings need."""
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0)
    from tarifa.customers.models import Account, Customer
    from tarifa.rating.models import Tariff

    started = time.perf_counter()
    if Customer.objects.filter(kind="operator", web_username="benchop").exists():  # --reuse: customers made
        return _reused(cdrs)
    tariff = Tariff.objects.create(name="Bench")
    common = {"company": "Bench", "email": "b@example.com", "phone": "+12015550123", "country": "US", "tariff": tariff}
    operator = Customer.objects.create(kind="operator", name="Operator", web_username="benchop", **common)
    parents = [
        Customer.objects.create(parent=operator, kind="reseller", name=f"R{i:04}", web_username=f"res{i}", **common)
        for i in range(resellers)
    ]
    rows = []
    for i in range(customers - 1 - resellers):
        parent = parents[i % resellers]
        code = _code("B", i)
        rows.append(
            Customer(
                parent=parent,
                name=f"Customer {i:07}",
                web_username=f"c{i}",
                account_code=code,
                path=f"{parent.path}{code}/",
                **common,
            )
        )
    with transaction.atomic():
        Customer.objects.bulk_create(rows, batch_size=5000)
    ids = list(Customer.objects.filter(kind="customer").order_by("id").values_list("id", flat=True))
    with transaction.atomic():
        Account.objects.bulk_create(
            [Account(customer_id=c, name=f"a{c}", account_code=_code("A", c)) for c in ids], batch_size=5000
        )
    accounts = list(Account.objects.order_by("id").values_list("id", "customer_id"))
    made_customers = time.perf_counter() - started
    made_cdrs = _cdrs(accounts, 0, cdrs)
    return _tokens(parents[0], f"{customers:,} customers in {made_customers:.1f} s, {cdrs:,} CDRs in {made_cdrs:.1f} s")


def _reused(cdrs: int) -> dict[str, Any]:
    from tarifa.cdrs.models import Cdr
    from tarifa.customers.models import Account, Customer

    accounts = list(Account.objects.order_by("id").values_list("id", "customer_id"))
    have = Cdr.objects.count()
    took = _cdrs(accounts, have, cdrs) if have < cdrs else 0.0
    reseller = Customer.objects.filter(kind="reseller").order_by("id").first()
    assert reseller is not None
    return _tokens(
        reseller, f"reused {Customer.objects.count():,} customers; CDRs {have:,} -> {cdrs:,} in {took:.1f} s"
    )


def _tokens(reseller: Any, made: str) -> dict[str, Any]:
    from tarifa.api.models import ApiToken

    _t, operator_token = ApiToken.issue("bench-op", operator=True, scopes=["read"], rate_limit=10_000_000)
    _t, reseller_token = ApiToken.issue("bench-res", customer=reseller, scopes=["read"], rate_limit=10_000_000)
    return {"operator": operator_token, "reseller": reseller_token, "reseller_path": reseller.path, "made": made}


def _cdrs(accounts: list[tuple[int, int]], first: int, cdrs: int) -> float:
    """CDRs ``first`` to ``cdrs`` - 1, spread over the accounts and 30 days: COPY on PostgreSQL,
    ``executemany`` in one transaction per 50,000 on SQLite."""
    from django.db import connection, transaction

    from tarifa.cdrs.models import Cdr

    start = datetime(2026, 1, 1, tzinfo=UTC)
    fields = ["switch", "call_id", "leg", "account", "customer", "callee", "start_time", "duration"]
    started = time.perf_counter()
    step = 50_000
    with connection.cursor() as cursor:
        table = Cdr._meta.db_table
        columns = [Cdr._meta.get_field(f).column for f in fields]
        defaults = {
            f.column: f.get_db_prep_save(start if f.name == "received_at" else f.get_default(), connection)
            for f in Cdr._meta.concrete_fields
            if f.column not in columns and not f.null and not f.primary_key
        }
        names = columns + list(defaults)
        for chunk in range(first, cdrs, step):
            batch = []
            for n in range(chunk, min(cdrs, chunk + step)):
                account, customer = accounts[(n * 7919) % len(accounts)]
                batch.append(
                    (
                        "bench",
                        f"call-{n}",
                        "a",
                        account,
                        customer,
                        "442071234567",
                        start + timedelta(seconds=n * 30 * 86400 // max(cdrs, 1)),
                        60,
                        *defaults.values(),
                    )
                )
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
                else:
                    marks = ", ".join(["%s"] * len(names))
                    cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", batch)
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


#: Rows between two timed pages of the same depth: each timed request reads other rows.
SPREAD = 53


def cursors(resource: str, ordering: str, scope_path: str | None, count: int) -> dict[str, list[str | None]]:
    """``count`` cursors of distinct pages around the middle and near the end of a listing (and the
    first page), read from the database: each timed request asks for rows no request before it read."""
    from tarifa.api.crud import encode_cursor
    from tarifa.api.objects import RESOURCES

    res = next(r for r in RESOURCES if r.path == resource)
    qs = res.model._default_manager.all()
    if scope_path is not None:
        qs = qs.filter(**{f"{res.tenant}__path__startswith" if res.tenant else "path__startswith": scope_path})
    key = ordering.lstrip("-")
    order = [ordering, "-pk" if ordering.startswith("-") else "pk"] if key != "id" else [ordering]
    total = qs.count()
    width = count * SPREAD
    out: dict[str, list[str | None]] = {"first": [None]}
    for name, at in (("middle", total // 2), ("last", max(total - 51 - width, 1))):
        rows = qs.order_by(*order).values_list(key if key != "id" else "pk", "pk")[at : at + width : SPREAD]
        out[name] = [encode_cursor(k, pk) for k, pk in rows] if at < total else []
    return out


def measure(port: int, token: str, paths: list[str], repeat: int) -> tuple[float, float, int]:
    """``repeat`` timed requests (after two warm-ups), cycling through ``paths``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    items = 0
    for i in range(repeat + 2):
        path = paths[i % len(paths)]
        began = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        took = (time.perf_counter() - began) * 1000
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
        items = len(json.loads(body)["items"])
        if i >= 2:  # two warm-up requests
            times.append(took)
    conn.close()
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--resellers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per page")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (dropped and created); default SQLite")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: keep the database and the rows a former run made, add the rest",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    url = _fresh(args.database_url, tmp, args.reuse)
    os.environ["TARIFA_DATABASE_URL"] = url
    os.environ["TARIFA_VAR_DIR"] = str(tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()
    data = fill(args.customers, args.cdrs, args.resellers)
    print(f"database: {url.split('@')[-1]}; made {data['made']}")
    pages = [
        ("operator", "customers", "id", None),
        ("operator", "customers", "-id", None),
        ("operator", "customers", "name", None),
        ("reseller", "customers", "id", data["reseller_path"]),
        ("operator", "call-records", "-id", None),
        ("operator", "call-records", "start_time", None),
        ("reseller", "call-records", "-id", data["reseller_path"]),
    ]
    plan = [(who, res, ordering, cursors(res, ordering, scope, args.repeat + 2)) for who, res, ordering, scope in pages]
    from django.db import connections

    connections.close_all()
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [sys.executable, "-m", "tarifa.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    worst = 0.0
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/api/v1/health")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                time.sleep(0.5)
        print(f"{'token':9} {'list':13} {'ordering':11} {'page':7} {'items':>5} {'p50 ms':>8} {'p95 ms':>8}")
        for who, res, ordering, marks in plan:
            for name, marks_at in marks.items():
                if not marks_at:
                    continue
                base = f"/api/v1/{res}?limit=50&ordering={ordering}"
                paths = [base + (f"&cursor={cursor}" if cursor else "") for cursor in marks_at]
                p50, p95, items = measure(port, data[who], paths, args.repeat)
                worst = max(worst, p95)
                flag = "ok" if p50 < TARGET_MS else "SLOW"
                print(f"{who:9} {res:13} {ordering:11} {name:7} {items:5} {p50:8.1f} {p95:8.1f}  {flag}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    print(f"worst p95: {worst:.1f} ms (target: a page in under {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
