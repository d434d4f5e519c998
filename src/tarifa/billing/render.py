"""An invoice as a document: PDF and CSV.

Minimal placeholder (notices branch): one PDF page with the number, the customer and the total,
and a CSV of the lines. The invoice-rendering work replaces this module with the full layout; the
signatures ``invoice_pdf(invoice) -> bytes`` and ``invoice_csv(invoice) -> str`` stay."""

from __future__ import annotations

import csv
import io

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from tarifa.billing.models import Invoice
from tarifa.spreadsheets import guard


def invoice_pdf(invoice: Invoice) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    canvas.setTitle(f"Invoice {invoice.number}")
    _width, height = A4
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(60, height - 80, f"Invoice {invoice.number}")
    canvas.setFont("Helvetica", 11)
    customer = invoice.customer
    canvas.drawString(60, height - 110, f"Customer: {customer.company or customer.name} ({customer.account_code})")
    canvas.drawString(
        60, height - 130, f"Period: {invoice.period_start.isoformat()} to {invoice.period_end.isoformat()}"
    )
    canvas.drawString(60, height - 150, f"Total: {invoice.total:.2f} {invoice.currency}")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def invoice_csv(invoice: Invoice) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "description", "quantity", "unit_price", "amount"])
    for line in invoice.lines.all():
        writer.writerow([invoice.number, guard(line.description), line.quantity, line.unit_price, line.amount])
    writer.writerow([invoice.number, "total", "", "", invoice.total])
    return out.getvalue()
