"""An invoice as a reader sees it: who issues it, who pays it, its lines grouped by section with
subtotals, its taxes and totals — plain data that the PDF and CSV renderers
(:mod:`tarifa.billing.render`) lay out, built once from the stored invoice.

Why a separate document: the layout rules (section order, which columns a section shows, how a
tax line reads, what the CSV holds) are tested here without a database or a PDF library, and the
same document feeds both formats, so the PDF and the CSV of one invoice never disagree.

Stored tax lines (section ``tax``) carry their rate (a percentage) and the base it was computed on
(``tax_rate``, ``tax_base``); a fixed tax has neither and shows its amount only.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final

from tarifa.core.invoices import InvoiceKind, LineSection

__all__ = [
    "CSV_HEADER",
    "SECTION_ORDER",
    "SECTION_TITLES",
    "DocLine",
    "DocSection",
    "DocTax",
    "InvoiceDocument",
    "Party",
    "csv_rows",
    "group_sections",
    "minutes",
    "tax_from_line",
]

#: The order sections appear in (the order of :class:`LineSection`).
SECTION_ORDER: Final = tuple(LineSection)
SECTION_TITLES: Final[dict[LineSection, str]] = {
    LineSection.CALLS: "Calls",
    LineSection.SERVICES: "Services and fees",
    LineSection.USAGE: "Usage by location",
    LineSection.DISCOUNT: "Discounts",
    LineSection.PENALTY: "Penalties",
    LineSection.DEPOSIT: "Deposits",
    LineSection.TAX: "Taxes",
    LineSection.ADJUSTMENT: "Credits and adjustments",
}


@dataclass(frozen=True, slots=True)
class Party:
    """An issuer or a customer as printed: ``address`` keeps the lines as typed."""

    name: str
    address: tuple[str, ...] = ()
    tax_id: str = ""
    email: str = ""
    phone: str = ""
    website: str = ""
    account_code: str = ""
    logo: bytes | None = None  # PNG or JPEG, already checked (tarifa.core.images)
    payment_instructions: str = ""


@dataclass(frozen=True, slots=True)
class DocLine:
    section: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    calls: int | None = None
    seconds: int | None = None
    location: str = ""
    tax_rate: Decimal | None = None  # tax lines: the percentage (None: a fixed tax)
    tax_base: Decimal | None = None  # tax lines: the amount taxed


@dataclass(frozen=True, slots=True)
class DocSection:
    key: str
    title: str
    lines: tuple[DocLine, ...]
    subtotal: Decimal


@dataclass(frozen=True, slots=True)
class DocTax:
    name: str
    rate: Decimal | None  # percent; None for a fixed amount
    base: Decimal | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    issuer: Party
    customer: Party
    kind: str  # InvoiceKind value
    number: str
    status: str
    currency: str
    issue_date: date | None
    period_start: date
    period_end: date
    due_date: date | None
    sections: tuple[DocSection, ...]
    taxes: tuple[DocTax, ...]
    subtotal: Decimal
    discount: Decimal
    penalty: Decimal
    tax: Decimal
    total: Decimal
    credited_number: str = ""  # a credit note: the invoice it corrects
    amount_due: Decimal | None = None  # None: the total
    notes: tuple[str, ...] = field(default=())
    decimals: int | None = None  # the customer's billing decimals, for amounts shown; None: the currency's

    @property
    def title(self) -> str:
        return "Credit note" if self.kind == InvoiceKind.CREDIT_NOTE else "Invoice"

    @property
    def due(self) -> Decimal:
        return self.total if self.amount_due is None else self.amount_due


def minutes(seconds: int | None) -> Decimal | None:
    """Billed seconds as minutes with two decimals, exact to the second's rounding (half-up)."""
    if seconds is None:
        return None
    return (Decimal(seconds) / 60).quantize(Decimal("0.01"))


def tax_from_line(line: DocLine) -> DocTax:
    """A stored tax line read back as a tax: its rate and base as stored (a fixed tax has neither)."""
    rate = line.tax_rate.normalize() if line.tax_rate is not None else None
    return DocTax(line.description, rate, line.tax_base, line.amount)


def group_sections(lines: Iterable[DocLine]) -> tuple[DocSection, ...]:
    """Lines grouped by section in :data:`SECTION_ORDER`, each group in its stored order with its
    subtotal; an unknown section comes last under its own name."""
    groups: dict[str, list[DocLine]] = {}
    for line in lines:
        groups.setdefault(line.section, []).append(line)
    order: dict[str, int] = {str(key): n for n, key in enumerate(SECTION_ORDER)}
    titles: dict[str, str] = {str(key): title for key, title in SECTION_TITLES.items()}
    keys = sorted(groups, key=lambda k: (order.get(k, len(order)), k))
    return tuple(
        DocSection(
            key,
            titles.get(key, key.replace("_", " ").capitalize()),
            tuple(groups[key]),
            sum((line.amount for line in groups[key]), Decimal(0)),
        )
        for key in keys
    )


#: ``tax_rate`` (percent) and ``tax_base`` are set on percentage tax lines only, so that every tax line
#: can be recomputed from the CSV alone (base x rate / 100, rounded to the billing decimals).
CSV_HEADER: Final = (
    "section",
    "description",
    "calls",
    "seconds",
    "location",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    "tax_base",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _tax_cells(line: DocLine) -> tuple[str, str]:
    """``tax_rate``, ``tax_base`` of a percentage tax line; empty for a fixed tax and every other line."""
    if line.section != LineSection.TAX or line.tax_rate is None or line.tax_base is None:
        return "", ""
    tax = tax_from_line(line)
    return _cell(tax.rate), _cell(tax.base)


def csv_rows(doc: InvoiceDocument) -> list[Sequence[str]]:
    """The CSV of an invoice: header rows (who, which invoice, totals) as ``field, value`` pairs, a
    blank row, then one row per line under :data:`CSV_HEADER`. Amounts are exact decimals as
    stored (``1.250000`` stays ``1.250000``): a spreadsheet sums them without rounding."""
    head: list[tuple[str, object]] = [
        ("document", doc.title),
        ("number", doc.number),
    ]
    if doc.credited_number:
        head.append(("credits invoice", doc.credited_number))
    head += [
        ("issuer", doc.issuer.name),
        ("customer", doc.customer.name),
        ("account code", doc.customer.account_code),
        ("issue date", doc.issue_date.isoformat() if doc.issue_date else ""),
        ("period start", doc.period_start.isoformat()),
        ("period end", doc.period_end.isoformat()),
        ("due date", doc.due_date.isoformat() if doc.due_date else ""),
        ("currency", doc.currency),
        ("subtotal", doc.subtotal),
        ("discount", doc.discount),
        ("penalty", doc.penalty),
        ("tax", doc.tax),
        ("total", doc.total),
        ("amount due", doc.due),
    ]
    rows: list[Sequence[str]] = [[name, _cell(value)] for name, value in head]
    rows.append([])
    rows.append(list(CSV_HEADER))
    for section in doc.sections:
        for line in section.lines:
            rows.append(
                [
                    section.key,
                    line.description,
                    _cell(line.calls),
                    _cell(line.seconds),
                    line.location,
                    _cell(line.quantity),
                    _cell(line.unit_price),
                    _cell(line.amount),
                    *_tax_cells(line),
                ]
            )
    return rows
