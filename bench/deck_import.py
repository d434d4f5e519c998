"""Deck import speed: a 60,000-row deck into a tariff on the configured database (default: a
fresh SQLite file), first import (all added), re-import of the same file (all unchanged),
re-import with every price changed from a later date (each old version end-dated, a new one
added), plus export. Target: under 10 s for the first import on SQLite.

    .venv/bin/python bench/deck_import.py [--rows 60000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import new_sqlite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tarifa-bench-")
    os.environ.setdefault("TARIFA_VAR_DIR", work)
    if "TARIFA_DATABASE_URL" not in os.environ:
        os.environ["TARIFA_DATABASE_URL"] = new_sqlite(f"{work}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tarifa.rating.decks import export_deck, import_file
    from tarifa.rating.models import Tariff

    call_command("migrate", verbosity=0)
    lines = ["prefix,destination,price_1,interval_1,interval_n,effective_from"]
    for n in range(args.rows):
        prefix = str(10 + n * 7919 % 999_999_989)[: 2 + n % 8]
        lines.append(f"{prefix}{n},Destination {n},0.{n % 9000 + 1000:04d},60,60,2026-01-01")
    data = ("\n".join(lines) + "\n").encode()
    tariff, _ = Tariff.objects.get_or_create(name="Bench")
    print(f"database: {connection.vendor}; deck: {args.rows:,} rows, {len(data) / 1e6:.1f} MB")

    start = time.perf_counter()
    result = import_file(tariff, data, "deck.csv")
    took = time.perf_counter() - start
    print(f"first import:  {took:6.2f} s  ({args.rows / took:,.0f} rows/s)  {result}")

    start = time.perf_counter()
    result = import_file(tariff, data, "deck.csv")
    took = time.perf_counter() - start
    print(f"re-import, nothing changed: {took:6.2f} s  ({args.rows / took:,.0f} rows/s)  {result}")

    changed = data.replace(b",0.", b",1.").replace(b",2026-01-01", b",2027-01-01")
    start = time.perf_counter()
    result = import_file(tariff, changed, "deck.csv")
    took = time.perf_counter() - start
    print(f"re-import, every price changed: {took:6.2f} s  ({args.rows / took:,.0f} rows/s)  {result}")

    start = time.perf_counter()
    exported = export_deck(tariff, "csv")
    took = time.perf_counter() - start
    print(f"export CSV:    {took:6.2f} s  ({len(exported) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
