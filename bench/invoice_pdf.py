"""Time to render one invoice PDF (issue 15): a 1-page and a 3-page invoice, with a logo.

Renders :class:`tarifa.core.invoice_document.InvoiceDocument` values built in memory with
:func:`tarifa.billing.render.render_pdf` (the part :func:`invoice_pdf` adds to reading the invoice
from the database), after one warm-up render that loads the fonts and decodes the logo (both kept
for the life of the process, as in an invoice run). Prints the time per PDF and per page, and what
10,000 invoices would take on one core. Target: well under 20 ms a page.

    PYTHONPATH=src .venv/bin/python bench/invoice_pdf.py [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from datetime import date
from decimal import Decimal

os.environ.setdefault("TARIFA_VAR_DIR", tempfile.mkdtemp(prefix="tarifa-bench-"))  # no database is used
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
import django

django.setup()

from tarifa.billing.render import render_pdf  # noqa: E402  (after Django is set up)
from tarifa.billing.sample import DESTINATIONS, sample_logo  # noqa: E402
from tarifa.core.invoice_document import DocLine, InvoiceDocument, Party, group_sections, tax_from_line  # noqa: E402

D = Decimal


def document(calls_lines: int) -> InvoiceDocument:
    lines = [
        DocLine(
            "calls",
            DESTINATIONS[n % len(DESTINATIONS)],
            D(1),
            D("1.23"),
            D("1.23"),
            calls=10 + n,
            seconds=600 + 7 * n,
        )
        for n in range(calls_lines)
    ]
    lines += [
        DocLine("services", "SIP trunk, monthly fee", D(1), D("149.00"), D("149.00")),
        DocLine("services", "DID numbers, monthly rental", D(12), D("1.50"), D("18.00")),
        DocLine("discount", "Volume discount", D(1), D("-5.00"), D("-5.00")),
        DocLine("tax", "VAT", D("200.00"), D("0.23"), D("46.00")),
    ]
    return InvoiceDocument(
        issuer=Party("Nordlicht Telecom GmbH", ("Friedrichstraße 68", "10117 Berlin"), "DE 1", logo=sample_logo()),
        customer=Party("Café Łódź Callcenter", ("ul. Piotrkowska 104", "90-926 Łódź"), account_code="C0000001"),
        kind="invoice",
        number="NT-2026-000123",
        status="issued",
        currency="EUR",
        issue_date=date(2026, 12, 1),
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        due_date=date(2026, 12, 31),
        sections=group_sections(lines),
        taxes=tuple(tax_from_line(line) for line in lines if line.section == "tax"),
        subtotal=D("200.00"),
        discount=D("5.00"),
        penalty=D(0),
        tax=D("46.00"),
        total=D("241.00"),
    )


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="PDFs rendered per size (after one warm-up)")
    args = parser.parse_args()
    warm = time.perf_counter()
    render_pdf(document(1))
    print(f"warm-up (fonts, logo): {(time.perf_counter() - warm) * 1000:.0f} ms")
    for label, calls_lines in (("1-page", 12), ("3-page", 110)):
        doc = document(calls_lines)
        first = render_pdf(doc)
        assert first.startswith(b"%PDF-"), "not a PDF"
        n_pages = pages(first)
        wall, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            render_pdf(doc)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        per_pdf = statistics.median(wall) * 1000  # float-ok: milliseconds measured, not money
        per_cpu = statistics.median(cpu) * 1000  # float-ok: milliseconds measured, not money
        print(
            f"{label} invoice ({calls_lines} calls lines, {n_pages} page(s), {len(first):,} bytes): "
            f"{per_pdf:.1f} ms per PDF wall, {per_cpu:.1f} ms CPU (medians of {args.runs}); "
            f"{per_cpu / n_pages:.1f} ms CPU per page; 10,000 such invoices on one core: {per_cpu * 10:.0f} s CPU"
        )


if __name__ == "__main__":
    main()
