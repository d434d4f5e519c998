"""The invoice run over a month of activity: 10,000 customers and 5,000,000 CDRs (issue 15).

Generates, in a fresh database, customers under the operator and under 10 resellers (three time
zones, a quarter taxed at 20 %, a tenth with a discount), one account each, DIDs with cost centers
for a fifth of them, and November 2026: each customer's CDRs charged by one ``call_charge``
Transaction per day (each CDR pointing to it, as ingestion does), a monthly fee and a payment.
Numbers never repeat (each CDR dials its own). Data goes in by COPY (PostgreSQL) or executemany
(SQLite), then the timed part: ``tarifa invoice run --period 2026-11`` in a new process, as the
operator runs it (``--slow`` runs it in this process to print its slow queries), then the same run
again (nothing new). Checks printed: the sum of the invoices equals minus the sum of the Transactions they account
for, numbers are gapless per issuer, the second run issued nothing.

PDFs: ``--pdf`` times the run with its PDFs, as the operator runs it: ``tarifa invoice run`` renders
and stores the PDF of every invoice it issued in worker processes (``--pdf-workers``, default one per
CPU core), and the figures printed are the whole run's invoices/s, the PDF part's PDFs/s and its
workers. Without ``--pdf`` the run is timed without PDFs (``--pdf-workers 0``).

    .venv/bin/python bench/invoice.py --pg postgres://postgres@127.0.0.1:55501/postgres   # full size
    .venv/bin/python bench/invoice.py --customers 50 --cdrs 5000                          # SQLite, tiny

Target: the run, PDFs included, under 5 minutes on PostgreSQL on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import new_sqlite

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--cdrs", type=int, default=5_000_000)
    parser.add_argument("--pg", default=os.environ.get("TARIFA_BENCH_PG"), help="postgres:// URL of a server")
    parser.add_argument("--pdf", action="store_true", help="time the run with its PDFs (rendered and stored)")
    parser.add_argument("--pdf-workers", type=int, default=None, help="the run's PDF workers (default: its own)")
    parser.add_argument("--slow", type=float, default=0, help="print the run's queries slower than this (seconds)")
    args = parser.parse_args()
    var = tempfile.mkdtemp(prefix="tarifa-bench-invoice-")
    os.environ["TARIFA_VAR_DIR"] = var
    dbname = None
    if args.pg:
        import psycopg

        dbname = f"tarifa_bench_inv_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
        os.environ["TARIFA_DATABASE_URL"] = args.pg.rsplit("/", 1)[0] + f"/{dbname}"
    else:
        os.environ["TARIFA_DATABASE_URL"] = new_sqlite(f"{var}/bench.sqlite3")
    try:
        run(args.customers, args.cdrs, args.pdf, args.slow, args.pdf_workers)
    finally:
        if dbname:
            import psycopg
            from django.db import connections

            connections.close_all()
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _copy(table: str, frame: object) -> None:
    import polars as pl
    from django.db import connection

    assert isinstance(frame, pl.DataFrame)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in frame.columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            data = frame.write_csv(include_header=False, null_value="\\N", quote_style="non_numeric")
            with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
                copy.write(data)
        else:
            marks = ", ".join(["%s"] * frame.width)
            cursor.executemany(f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks})", frame.rows())


def run(n_customers: int, n_cdrs: int, pdf: bool, slow: float = 0, pdf_workers: int | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()
    from datetime import UTC, datetime
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    import numpy as np
    import polars as pl
    from django.core.management import call_command
    from django.db import connection, connections, transaction
    from django.db.models import Sum

    from tarifa.billing.models import BillingProfile, Invoice, InvoicePdf, InvoiceSequence, Transaction
    from tarifa.cdrs.models import Cdr
    from tarifa.core.invoicing import Period, parse_period
    from tarifa.customers.models import Account, Customer
    from tarifa.db import datetime_text
    from tarifa.dids.models import Did
    from tarifa.rating.models import Tariff
    from tarifa.services.invoicing import INVOICED_KINDS, run_invoices

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}; {n_customers:,} customers, {n_cdrs:,} CDRs (numbers never repeat)")
    built = time.perf_counter()
    rng = np.random.default_rng(15)
    zones = ["UTC", "Europe/Paris", "America/New_York"]
    tariff = Tariff.objects.create(name="Bench")
    common = dict(tariff=tariff, email="c@c.example", phone="+12015550123", country="US")
    operator = Customer.objects.create(kind="operator", name="Op", company="Operator", web_username="op", **common)
    resellers = [
        Customer.objects.create(
            kind="reseller", parent=operator, name=f"R{r}", company=f"Reseller {r}", web_username=f"res{r}", **common
        )
        for r in range(10)
    ]
    customers = Customer.objects.bulk_create(
        [
            Customer(
                parent=resellers[n % 10] if n % 10 == 9 else operator,
                name=f"C{n}",
                company=f"Customer {n}",
                web_username=f"c{n}",
                account_code=f"B{n:07d}",
                path=(resellers[n % 10].path if n % 10 == 9 else operator.path) + f"B{n:07d}/",
                time_zone=zones[n % 3],
                tax_flag="VAT" if n % 4 == 1 else "NONE",
                tax_rate=Decimal(20) if n % 4 == 1 else Decimal(0),
                billing_decimals=4,
                billing_type="postpaid",
                credit_limit=Decimal(10**6),
                **common,
            )
            for n in range(n_customers)
        ],
        batch_size=5000,
    )
    BillingProfile.objects.bulk_create(
        [
            BillingProfile(customer=c, discount_kind="percent", discount_value=Decimal("7.5"))
            for n, c in enumerate(customers)
            if n % 10 == 2
        ]
    )
    accounts = Account.objects.bulk_create(
        [Account(customer=c, name=f"a{n}", account_code=f"A{n:07d}") for n, c in enumerate(customers)],
        batch_size=5000,
    )
    Did.objects.bulk_create(
        [
            Did(number=f"1201{n:07d}", status="assigned", account=a, cost_center=f"Site {n % 7}")
            for n, a in enumerate(accounts)
            if n % 5 == 0
        ],
        batch_size=5000,
    )
    cust_ids = np.array([c.pk for c in customers], dtype=np.int64)
    acc_ids = np.array([a.pk for a in accounts], dtype=np.int64)
    days = 30
    month_us = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1_000_000)
    day_us = 86_400 * 1_000_000
    with connection.cursor() as cursor:  # transaction ids ahead: one per customer and day
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {Transaction._meta.db_table}")
        first_tx = cursor.fetchone()[0]
    n_tx = n_customers * days
    indexes: list[str] = []
    if connection.vendor == "postgresql":  # load first, index after: faster than maintaining 6 indexes per row
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.indexname, i.indexdef, c.conname FROM pg_indexes i LEFT JOIN pg_constraint c "
                "ON c.conname = i.indexname WHERE i.tablename = %s AND i.indexname NOT LIKE %s",
                [Cdr._meta.db_table, "%pkey"],
            )
            found = cursor.fetchall()
            for name, definition, constraint in found:
                if constraint:
                    cursor.execute(f'ALTER TABLE {Cdr._meta.db_table} DROP CONSTRAINT "{name}"')
                    indexes.append(
                        f'ALTER TABLE {Cdr._meta.db_table} ADD CONSTRAINT "{name}" UNIQUE USING INDEX "{name}"'
                    )
                    indexes.insert(0, definition.replace("CREATE INDEX", "CREATE UNIQUE INDEX", 0))
                else:
                    cursor.execute(f'DROP INDEX "{name}"')
                    indexes.insert(0, definition)
    with transaction.atomic():
        written = 0
        chunk = 1_000_000
        sums = np.zeros(n_tx, dtype=np.int64)
        while written < n_cdrs:
            size = min(chunk, n_cdrs - written)
            i = np.arange(written, written + size, dtype=np.int64)
            who = i % n_customers
            day = (i // n_customers) % days
            tx = first_tx + who * days + day
            price = rng.integers(0, 20_000, size, dtype=np.int64) * 100  # micro-units, 4 decimals
            seconds = rng.integers(1, 1800, size, dtype=np.int64)
            np.add.at(sums, who * days + day, price)
            start_us = month_us + day * day_us + 3_600_000_000 + rng.integers(0, 60_000_000_000, size, dtype=np.int64)
            frame = pl.DataFrame(
                {
                    "switch": pl.Series(["bench"] * size),
                    "call_id": pl.Series(i).cast(pl.Utf8),
                    "i": i,
                    "customer_id": cust_ids[who],
                    "account_id": acc_ids[who],
                    "start": start_us,
                    "billed_seconds": seconds,
                    "price": price,
                    "transaction_id": tx,
                    "dest": rng.integers(0, 40, size, dtype=np.int64),  # 40 destinations a customer calls
                }
            ).select(
                pl.col("switch"),
                pl.col("call_id"),
                pl.lit("a").alias("leg"),
                pl.lit("outbound").alias("direction"),
                pl.col("account_id"),
                pl.col("customer_id"),
                pl.lit("").alias("caller"),
                (pl.lit("44") + pl.col("i").cast(pl.Utf8).str.zfill(10)).alias("callee"),
                (pl.lit("44") + pl.col("i").cast(pl.Utf8).str.zfill(10)).alias("number"),
                pl.lit("").alias("sip_user"),
                pl.lit("").alias("trunk"),
                pl.when(pl.col("i") % 4 == 0)
                .then(pl.lit("1201") + (pl.col("i") % n_customers).cast(pl.Utf8).str.zfill(7))
                .otherwise(pl.lit(""))
                .alias("did"),
                pl.lit("").alias("extension"),
                pl.lit("").alias("account_code"),
                pl.lit("").alias("connection_name"),
                datetime_text(pl.col("start")).alias("start_time"),
                datetime_text(pl.col("start")).alias("connect_time"),
                pl.col("billed_seconds").alias("duration"),
                pl.lit("answered").alias("disposition"),
                pl.lit("").alias("prefix"),
                (pl.lit("Destination ") + pl.col("dest").cast(pl.Utf8)).alias("destination"),
                pl.col("billed_seconds"),
                pl.col("price"),
                pl.lit(0).alias("cost"),
                pl.col("price").alias("margin"),
                pl.lit("rated").alias("rating_status"),
                pl.lit("").alias("unrated_reason"),
                datetime_text(pl.col("start")).alias("received_at"),
                pl.lit("").alias("pool_key"),
                pl.lit(0).alias("pool_seconds"),
                pl.lit(0).alias("out_payment"),
                pl.col("transaction_id"),
            )
            _copy(Cdr._meta.db_table, frame)
            written += size
        t_ids = np.arange(first_tx, first_tx + n_tx, dtype=np.int64)
        k = np.arange(n_tx, dtype=np.int64)
        created = month_us + (k % days) * day_us + 20 * 3_600_000_000 + 7
        txs = (
            pl.DataFrame(
                {
                    "id": t_ids,
                    "customer_id": cust_ids[k // days],
                    "kind": ["call_charge"] * n_tx,
                    "amount": -sums,
                    "balance_after": np.zeros(n_tx, dtype=np.int64),
                    "currency": ["USD"] * n_tx,
                    "description": ["calls of the day"] * n_tx,
                    "created": created,
                    "actor": [""] * n_tx,
                }
            )
            .with_columns(datetime_text(pl.col("created")).alias("created_at"))
            .drop("created")
        )
        _copy(Transaction._meta.db_table, txs)
        if connection.vendor == "postgresql":  # the ids given above: the sequence goes on after them
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM billing_transaction))",
                    [Transaction._meta.db_table],
                )
        fees = (
            pl.DataFrame(
                {
                    "customer_id": np.concatenate([cust_ids, cust_ids]),
                    "kind": ["recurring_fee"] * n_customers + ["payment"] * n_customers,
                    "amount": np.concatenate(
                        [np.full(n_customers, -29_990_000, dtype=np.int64), np.full(n_customers, 50_000_000)]
                    ),
                    "balance_after": np.zeros(2 * n_customers, dtype=np.int64),
                    "currency": ["USD"] * (2 * n_customers),
                    "description": ["Monthly plan"] * n_customers + [""] * n_customers,
                    "reference": [f"fee:{c}" for c in cust_ids] + [f"pay:{c}" for c in cust_ids],
                    "created": np.full(2 * n_customers, month_us + 5 * day_us, dtype=np.int64),
                    "actor": [""] * (2 * n_customers),
                }
            )
            .with_columns(datetime_text(pl.col("created")).alias("created_at"))
            .drop("created")
        )
        _copy(Transaction._meta.db_table, fees)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE customers_customer SET balance = coalesce((SELECT sum(amount) FROM billing_transaction t "
                "WHERE t.customer_id = customers_customer.id), 0)"
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for statement in indexes:
                cursor.execute(statement)
            cursor.execute("ANALYZE")
    print(f"data generated in {time.perf_counter() - built:.1f} s ({n_tx + 2 * n_customers:,} Transactions)")

    nov = parse_period("2026-11")
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)

    def timed_query(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - began
            if slow and took > slow:
                print(f"  slow query {took:.2f} s: {sql[:600]}")

    # Timed as the operator runs it: ``tarifa invoice run`` in a new process (start-up, settings,
    # notices queued by the receivers, the PDFs with --pdf). ``--slow`` runs it in this process
    # instead, to see its queries (and its PDFs with tarifa.billing.pdfs, as the command does).
    workers = ["--pdf-workers", str(pdf_workers if pdf else 0)] if not pdf or pdf_workers is not None else []
    pdf_line = ""
    started = time.perf_counter()
    if slow:
        with connection.execute_wrapper(timed_query):
            result = run_invoices(period=nov, now=now)
        issued = result.issued
        if pdf:
            from tarifa.billing.pdfs import render_invoice_pdfs

            pdf_line = render_invoice_pdfs(result.ids, pdf_workers).summary()
    else:
        connections.close_all()
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
        )
        done = subprocess.run(
            [sys.executable, "-m", "tarifa.cli", "invoice", "run", "--period", "2026-11", *workers],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(f"tarifa invoice run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        if done.stderr.strip():
            print(done.stderr.strip())
        issued = list(Invoice.objects.order_by("number").values_list("number", flat=True))
        pdf_line = next((line for line in done.stdout.splitlines() if line.startswith("PDFs: ")), "")
    seconds = time.perf_counter() - started
    n = len(issued)
    how = "in this process" if slow else "`tarifa invoice run`, process start included"
    what = "with its PDFs" if pdf else "without PDFs"
    full = n_customers >= 10_000 and n_cdrs >= 5_000_000
    verdict = ("met" if seconds < 300 else "NOT met") if full else "judged at full size only"
    print(
        f"invoice run {what}: {n_customers:,} customers, {n_cdrs:,} CDRs -> {n:,} invoices in {seconds:.1f} s "
        f"({n / seconds:,.1f} invoices/s; {how}); target < 300 s: {verdict}"
    )
    if pdf:
        found = re.search(r"PDFs: (\d+) rendered and stored by (.*) in ([\d.]+) s \(([\d.]+) s CPU\)", pdf_line)
        if found is None:
            sys.exit(f"the run printed no PDF figures: {pdf_line!r}")
        rendered, where = int(found.group(1)), found.group(2)
        spent, cpu = float(found.group(3)), float(found.group(4))  # float-ok: seconds
        print(
            f"PDFs: {rendered:,} rendered and stored by {where} in {spent:.1f} s ({rendered / max(spent, 1e-9):,.1f} "
            f"PDFs/s; {cpu:.1f} s CPU, {1000 * cpu / max(rendered, 1):.0f} ms CPU per PDF), part of the run's "
            f"{seconds:.1f} s; the invoices alone {seconds - spent:.1f} s"
        )
        print(f"PDFs stored: {InvoicePdf.objects.count():,} of {n:,} invoices")
    else:
        print("PDFs: not rendered (run with --pdf)")
    # Checks: invoices = minus the Transactions they account for; numbers gapless; a rerun issues nothing.
    check = Decimal(0)
    for zone in zones:
        start, end = Period(nov.start, nov.end).bounds(ZoneInfo(zone))
        timed = Transaction.objects.filter(
            customer__time_zone=zone,
            created_at__gte=start,
            created_at__lt=end,
            kind__in=[k for k in INVOICED_KINDS if k not in ("discount", "tax")],
        ).aggregate(t=Sum("amount"))["t"] or Decimal(0)
        check -= timed
    check -= Transaction.objects.filter(kind__in=["discount", "tax"]).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    invoiced = Invoice.objects.aggregate(t=Sum("total"))["t"] or Decimal(0)
    print(f"sum of invoices {invoiced} = minus the invoiced Transactions {check}: {invoiced == check}")
    gapless = all(
        Invoice.objects.filter(number__startswith=f"{s.prefix}-{s.year}-").count() == s.last
        for s in InvoiceSequence.objects.all()
    )
    print(f"numbers gapless per issuer ({InvoiceSequence.objects.count()} issuers): {gapless}")
    before = Transaction.objects.count()
    started = time.perf_counter()
    again = run_invoices(period=nov, now=now)
    print(
        f"second run: {len(again.issued)} invoices issued, {again.already:,} already invoiced, "
        f"{Transaction.objects.count() - before} new Transactions, in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
