"""Invoices as PDF and CSV (issue 15): :func:`invoice_pdf` and :func:`invoice_csv`.

Both go through one :class:`~tarifa.core.invoice_document.InvoiceDocument` built from the stored
invoice (:func:`invoice_document`), so the two formats never disagree. The PDF (reportlab) shows
the issuer's name, logo, address and contact (the operator's, or the reseller's white label:
:mod:`tarifa.customers.branding`), the customer, the dates, the lines by section with subtotals,
the taxes, the totals and the payment instructions; its table of lines continues over as many
pages as it needs under a repeated header, each page numbered "Page n of m".

Fonts: DejaVu Sans (Debian's ``fonts-dejavu-core``) is embedded so that any name prints (Cyrillic,
Greek, accents); without it the PDF falls back to Helvetica, which shows Latin-1 only. Fonts and
decoded logos are loaded once per process.

Money: exact Decimals formatted by Babel for the invoice's currency (its minor-unit decimals, more
only where the amount has more: a digit is never rounded away).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable

from tarifa.core.invoice_document import (
    DocLine,
    DocSection,
    DocTax,
    InvoiceDocument,
    Party,
    group_sections,
    minutes,
    tax_from_line,
)
from tarifa.core.invoices import InvoiceKind, LineSection
from tarifa.core.money import format_money
from tarifa.spreadsheets import guarded_rows

if TYPE_CHECKING:
    from tarifa.billing.models import Invoice

__all__ = ["FONT_DIRS", "invoice_csv", "invoice_document", "invoice_pdf", "money", "render_csv", "render_pdf"]

log = logging.getLogger(__name__)

# Binary (Flate only) streams instead of Flate + ASCII85: every PDF reader takes them, and the
# ASCII85 step, pure Python without reportlab's optional accelerator, was a third of the time.
rl_config.useA85 = 0

#: Where DejaVu Sans is looked for (Debian's fonts-dejavu-core puts it in the first).
FONT_DIRS: Final = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


# --- the document, from the database -------------------------------------------------------------


def invoice_document(invoice: Invoice, *, due: Decimal | None = None) -> InvoiceDocument:
    """The stored invoice as plain data (three queries: the invoice's parties, its lines, the issuer;
    and those of :func:`amount_due` unless ``due`` gives it)."""
    from tarifa.customers.branding import customer_party, issuer_party

    lines = [
        DocLine(
            section=line.section,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            calls=line.calls,
            seconds=line.seconds,
            location=line.location,
            tax_rate=line.tax_rate,
            tax_base=line.tax_base,
        )
        for line in invoice.lines.all().order_by("id")
    ]
    taxes = tuple(tax_from_line(line) for line in lines if line.section == LineSection.TAX)
    credited = invoice.credited_invoice.number if invoice.credited_invoice_id and invoice.credited_invoice else ""
    return InvoiceDocument(
        issuer=issuer_party(invoice.issuer),
        customer=customer_party(invoice.customer),
        kind=invoice.kind,
        number=invoice.number,
        status=invoice.status,
        currency=invoice.currency,
        issue_date=invoice.issued_at.date() if invoice.issued_at else None,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        due_date=invoice.due_date,
        sections=group_sections(lines),
        taxes=taxes,
        subtotal=invoice.subtotal,
        discount=invoice.discount,
        penalty=invoice.penalty,
        tax=invoice.tax,
        total=invoice.total,
        credited_number=credited,
        decimals=invoice.customer.billing_decimals,
        amount_due=(amount_due(invoice) if due is None else due) if invoice.kind == InvoiceKind.INVOICE else None,
    )


def amount_due(invoice: Invoice) -> Decimal:
    """What is left to pay on an issued invoice: its total less the payments and credits allocated to
    it and less its issued credit notes (the part of a credit note's money already allocated to it is
    counted once); 0 once it is paid."""
    from django.db.models import Sum

    from tarifa.billing.allocation import CREDIT_TAX_SUFFIX
    from tarifa.billing.models import InvoiceStatus

    suffixes = (":credit", CREDIT_TAX_SUFFIX)

    if invoice.status == InvoiceStatus.PAID:
        return Decimal(0)
    notes = invoice.credit_notes.filter(kind=InvoiceKind.CREDIT_NOTE, status=InvoiceStatus.ISSUED)
    credited = -(notes.aggregate(t=Sum("total"))["t"] or Decimal(0))
    references = [f"{number}{suffix}" for number in notes.values_list("number", flat=True) for suffix in suffixes]
    allocations = invoice.allocations.all()
    allocated = allocations.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    from_notes = allocations.filter(source__reference__in=references).aggregate(s=Sum("amount"))["s"] or Decimal(0)
    left: Decimal = invoice.total - allocated - (credited - from_notes)
    return max(Decimal(0), left)


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice (or credit note) as a PDF file, rendered now (downloads and e-mail take the
    stored one: :func:`tarifa.billing.pdfs.stored_pdf`)."""
    return render_pdf(invoice_document(invoice))


def invoice_csv(invoice: Invoice) -> str:
    """The invoice as CSV: totals as header rows, then one row per line (exact decimals); no cell
    runs as a spreadsheet formula (:func:`tarifa.spreadsheets.guard`)."""
    return render_csv(invoice_document(invoice))


def render_csv(doc: InvoiceDocument) -> str:
    from tarifa.core.invoice_document import csv_rows

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(guarded_rows(csv_rows(doc)))
    return out.getvalue()


# --- formatting ---------------------------------------------------------------------------------


def money(amount: Decimal, currency: str, decimals: int | None = None) -> str:
    """``$1,234.50``: the one money formatter (:func:`tarifa.core.money.format_money`, also the
    command line's): currency sign, thousands separator, at least ``decimals`` decimals (the
    customer's billing decimals; None: the currency's), more only when the amount has them."""
    return format_money(amount, currency, decimals)


def _day(value: date | None) -> str:
    if value is None:
        return "—"
    return f"{value:%d %b %Y}".lstrip("0")


def _qty(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f} %"


# --- fonts and logos (loaded once per process) ---------------------------------------------------


@cache
def _fonts() -> tuple[str, str]:
    """(regular, bold) font names: DejaVu Sans embedded when the files exist, else Helvetica."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("TarifaSans", str(regular)))
            pdfmetrics.registerFont(TTFont("TarifaSans-Bold", str(bold)))
            addMapping("TarifaSans", 0, 0, "TarifaSans")
            addMapping("TarifaSans", 1, 0, "TarifaSans-Bold")
            addMapping("TarifaSans", 0, 1, "TarifaSans")
            addMapping("TarifaSans", 1, 1, "TarifaSans-Bold")
            return "TarifaSans", "TarifaSans-Bold"
    log.warning(
        "DejaVu Sans not found in %s: invoices use Helvetica, which cannot show non-Latin names "
        "(install Debian's fonts-dejavu-core)",
        ", ".join(map(str, FONT_DIRS)),
    )
    return "Helvetica", "Helvetica-Bold"


_LOGOS: dict[bytes, Any] = {}


def _logo_reader(data: bytes) -> Any:
    """A decoded logo, kept per content (a run prints the same few logos on thousands of invoices)."""
    from reportlab.lib.utils import ImageReader

    key = hashlib.sha256(data).digest()
    reader = _LOGOS.get(key)
    if reader is None:
        if len(_LOGOS) >= 64:
            _LOGOS.clear()
        reader = _LOGOS[key] = ImageReader(io.BytesIO(data))
    return reader


# --- the PDF ------------------------------------------------------------------------------------


def render_pdf(doc: InvoiceDocument) -> bytes:
    """Lay ``doc`` out on A4 pages."""
    return _Renderer(doc).build()


class _Renderer:
    def __init__(self, doc: InvoiceDocument) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        self.doc = doc
        self.font, self.bold = _fonts()
        self.colors = colors
        self.grey = colors.HexColor("#5f6b7a")
        self.rule = colors.HexColor("#c9d1db")
        self.band = colors.HexColor("#eef2f6")
        self.small = ParagraphStyle("small", fontName=self.font, fontSize=8, leading=10)
        self.body = ParagraphStyle("body", fontName=self.font, fontSize=9, leading=11.5)
        self.right = ParagraphStyle("right", parent=self.body, alignment=2)
        self.name_style = ParagraphStyle("name", fontName=self.bold, fontSize=13, leading=16)
        self.title_style = ParagraphStyle("title", fontName=self.bold, fontSize=20, leading=24, alignment=2)
        self.label = ParagraphStyle("label", fontName=self.bold, fontSize=8, leading=10, textColor=self.grey)

    def m(self, amount: Decimal) -> str:
        return money(amount, self.doc.currency, self.doc.decimals)

    def p(self, text: str, style: Any = None) -> Any:
        from reportlab.platypus import Paragraph

        return Paragraph(escape(text).replace("\n", "<br/>"), style or self.body)

    # .. blocks
    def _party_lines(self, party: Party, with_contact: bool) -> list[str]:
        lines = list(party.address)
        if with_contact:
            lines += [x for x in (party.phone, party.email, party.website) if x]
            if party.tax_id:
                lines.append(f"Tax id: {party.tax_id}")
        return lines

    def header(self) -> list[Any]:
        from reportlab.lib.units import mm
        from reportlab.platypus import Spacer, Table, TableStyle

        d = self.doc
        issuer: list[Any] = []
        if d.issuer.logo:
            issuer.append(_Logo(_logo_reader(d.issuer.logo), 50 * mm, 18 * mm))
            issuer.append(Spacer(1, 2 * mm))
        issuer.append(self.p(d.issuer.name, self.name_style))
        issuer.append(self.p("\n".join(self._party_lines(d.issuer, True)), self.small))

        facts = [
            ("Number", d.number),
            ("Issue date", _day(d.issue_date)),
            ("Period", f"{_day(d.period_start)} \N{EN DASH} {_day(d.period_end)}"),
            ("Due date", _day(d.due_date)),
        ]
        if d.credited_number:
            facts.insert(1, ("Corrects invoice", d.credited_number))
        fact_rows = [[self.p(k, self.label), self.p(val, self.right)] for k, val in facts]
        fact_table = Table(fact_rows, colWidths=[32 * mm, 48 * mm])
        fact_table.setStyle(
            TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)])
        )
        right = [self.p(d.title, self.title_style), Spacer(1, 3 * mm), fact_table]
        if d.status == "draft":
            right.insert(1, self.p("DRAFT — not a valid invoice", self.right))
        top = Table([[issuer, right]], colWidths=[94 * mm, 80 * mm])
        top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0)]))

        bill_to = [
            self.p("Bill to" if d.kind == InvoiceKind.INVOICE else "Credited to", self.label),
            self.p(d.customer.name, self.name_style),
            self.p("\n".join(self._party_lines(d.customer, False)), self.small),
        ]
        if d.customer.account_code:
            bill_to.append(self.p(f"Account code: {d.customer.account_code}", self.small))
        if d.credited_number:
            bill_to.append(Spacer(1, 2 * mm))
            bill_to.append(self.p(f"This credit note corrects invoice {d.credited_number}.", self.body))
        return [top, Spacer(1, 6 * mm), *bill_to, Spacer(1, 6 * mm)]

    def lines_table(self) -> list[Any]:
        """One table for every section but taxes: a section title row, its lines, its subtotal; the
        column header repeats on every page the table continues on."""
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        header = ["Description", "Calls", "Minutes", "Quantity", "Unit price", "Amount"]
        rows: list[list[Any]] = [header]
        style: list[tuple[Any, ...]] = [
            ("FONTNAME", (0, 0), (-1, -1), self.font),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("LEADING", (0, 0), (-1, -1), 10.5),
            ("FONTNAME", (0, 0), (-1, 0), self.bold),
            ("TEXTCOLOR", (0, 0), (-1, 0), self.grey),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, self.grey),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1.6),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
        ]
        sections = [s for s in self.doc.sections if s.key != LineSection.TAX]
        for section in sections:
            n = len(rows)
            rows.append([section.title, "", "", "", "", ""])
            style += [
                ("SPAN", (0, n), (-1, n)),
                ("FONTNAME", (0, n), (-1, n), self.bold),
                ("BACKGROUND", (0, n), (-1, n), self.band),
                ("ALIGN", (0, n), (-1, n), "LEFT"),
                ("TOPPADDING", (0, n), (-1, n), 3),
            ]
            for line in section.lines:
                rows.append(self._line_row(section, line))
            n = len(rows)
            rows.append([f"Subtotal {section.title.lower()}", "", "", "", "", self.m(section.subtotal)])
            style += [
                ("FONTNAME", (0, n), (-1, n), self.bold),
                ("LINEABOVE", (0, n), (-1, n), 0.4, self.rule),
                ("BOTTOMPADDING", (0, n), (-1, n), 4),
            ]
        if not sections:
            return []
        table = Table(rows, colWidths=[70 * mm, 16 * mm, 20 * mm, 20 * mm, 22 * mm, 26 * mm], repeatRows=1)
        table.setStyle(TableStyle(style))
        return [table]

    def _line_row(self, section: DocSection, line: DocLine) -> list[Any]:
        text = line.description
        if line.location and line.location not in text:
            text = f"{text} — {line.location}"
        cell: Any = self.p(text) if len(text) > 48 else text
        if section.key in (LineSection.CALLS, LineSection.USAGE) or line.calls is not None:
            mins = minutes(line.seconds)
            return [
                cell,
                f"{line.calls:,}" if line.calls is not None else "",
                f"{mins:,}" if mins is not None else "",
                "",
                "",
                self.m(line.amount),
            ]
        return [cell, "", "", _qty(line.quantity), self.m(line.unit_price), self.m(line.amount)]

    def totals(self) -> list[Any]:
        from reportlab.lib.units import mm
        from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

        d = self.doc
        out: list[Any] = [Spacer(1, 5 * mm)]
        if d.taxes:
            rows: list[list[Any]] = [["Tax", "Rate", "Base", "Amount"]]
            rows += [self._tax_row(t) for t in d.taxes]
            taxes = Table(rows, colWidths=[70 * mm, 24 * mm, 40 * mm, 40 * mm], repeatRows=1)
            taxes.setStyle(
                TableStyle(
                    [
                        ("FONTNAME", (0, 0), (-1, -1), self.font),
                        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                        ("FONTNAME", (0, 0), (-1, 0), self.bold),
                        ("TEXTCOLOR", (0, 0), (-1, 0), self.grey),
                        ("LINEBELOW", (0, 0), (-1, 0), 0.8, self.grey),
                        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                    ]
                )
            )
            out += [KeepTogether([self.p("Taxes", self.label), taxes]), Spacer(1, 4 * mm)]

        due_label = "Amount due" if d.kind == InvoiceKind.INVOICE else "Amount credited"
        figures = [("Subtotal", d.subtotal)]
        if d.discount:
            figures.append(("Discount", -d.discount))
        if d.penalty:
            figures.append(("Penalties", d.penalty))
        figures += [("Taxes", d.tax), ("Total", d.total)]
        if d.kind == InvoiceKind.INVOICE and d.due != d.total:
            figures.append(("Paid and credited", d.due - d.total))
        figures.append((due_label, d.due))
        rows = [["", label, self.m(value)] for label, value in figures]
        table = Table(rows, colWidths=[94 * mm, 40 * mm, 40 * mm])
        last = len(rows) - 1
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), self.font),
                    ("FONTSIZE", (0, 0), (-1, -1), 9),
                    ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                    ("FONTNAME", (1, last - 1), (-1, last), self.bold),
                    ("LINEABOVE", (1, last - 1), (-1, last - 1), 0.8, self.grey),
                    ("FONTSIZE", (1, last), (-1, last), 11),
                    ("TOPPADDING", (1, last), (-1, last), 4),
                    ("BACKGROUND", (1, last), (-1, last), self.band),
                ]
            )
        )
        out.append(KeepTogether([table]))
        return out

    def _tax_row(self, tax: DocTax) -> list[str]:
        return [
            tax.name,
            _percent(tax.rate) if tax.rate is not None else "fixed",
            self.m(tax.base) if tax.base is not None else "",
            self.m(tax.amount),
        ]

    def payment(self) -> list[Any]:
        from reportlab.lib.units import mm
        from reportlab.platypus import KeepTogether, Spacer

        d = self.doc
        if d.kind != InvoiceKind.INVOICE:
            text = f"This credit note reduces what is owed on invoice {d.credited_number or '—'} by {self.m(-d.total)}"
            if d.tax:
                text += f" ({self.m(-(d.total - d.tax))} net + {self.m(-d.tax)} tax)"
            text += "."
            return [Spacer(1, 6 * mm), self.p(text)]
        parts = []
        if d.due <= 0 < d.total:
            parts.append(f"Paid: nothing is left to pay on {d.number}. Thank you.")
        elif d.due_date is not None:
            parts.append(f"Please pay {self.m(d.due)} by {_day(d.due_date)}, quoting {d.number}.")
        else:
            parts.append(f"Please quote {d.number} with your payment.")
        block = [self.p("Payment", self.label), self.p(" ".join(parts))]
        if d.issuer.payment_instructions:
            block.append(self.p(d.issuer.payment_instructions, self.small))
        return [Spacer(1, 6 * mm), KeepTogether(block)]

    def build(self) -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm
        from reportlab.platypus import SimpleDocTemplate

        out = io.BytesIO()
        d = self.doc
        template = SimpleDocTemplate(
            out,
            pagesize=A4,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=18 * mm,
            title=f"{d.title} {d.number}",
            author=d.issuer.name,
            subject=f"{d.title} {d.number} for {d.customer.name}",
            creator="Tarifa",
            invariant=1,
        )
        story = [*self.header(), *self.lines_table(), *self.totals(), *self.payment()]
        footer = f"{d.issuer.name} · {d.title} {d.number}"
        font = self.font
        grey = self.grey

        def canvasmaker(*args: Any, **kwargs: Any) -> Any:
            return _NumberedCanvas(footer, font, grey, *args, **kwargs)

        template.build(story, canvasmaker=canvasmaker)
        return out.getvalue()


class _Logo(Flowable):  # type: ignore[misc]
    """A logo scaled to fit ``max_w × max_h`` (aspect kept), drawn from a cached decoded image."""

    def __init__(self, reader: Any, max_w: float, max_h: float) -> None:  # float-ok: picture points, not money
        super().__init__()
        iw, ih = reader.getSize()
        scale = min(max_w / iw, max_h / ih)  # float-ok: picture points, not money
        self.reader, self.width, self.height = reader, iw * scale, ih * scale
        self.hAlign = "LEFT"

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:  # float-ok: points
        return self.width, self.height

    def draw(self) -> None:
        self.canv.drawImage(self.reader, 0, 0, self.width, self.height, mask="auto")


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Holds each page until the end so that every footer can say "Page n of m"."""

    def __init__(self, footer: str, font: str, color: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer, self._font, self._color = footer, font, color
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for page in self._pages:
            self.__dict__.update(page)
            self._draw_footer(total)
            super().showPage()
        super().save()

    def _draw_footer(self, total: int) -> None:
        from reportlab.lib.units import mm

        width, _ = self._pagesize
        self.saveState()
        self.setFont(self._font, 7.5)
        self.setFillColor(self._color)
        self.drawString(18 * mm, 10 * mm, self._footer)
        self.drawRightString(width - 18 * mm, 10 * mm, f"Page {self._pageNumber} of {total}")
        self.restoreState()
