"""The arithmetic and life cycle an invoice must obey, whoever types or computes it (the back
office today, a billing cycle later).

* a line: ``amount = quantity × unit price``, rounded half-up to the money columns' 6 decimal
  places, or to the customer's billing decimals (the way call prices are rounded);
* the invoice: ``total = subtotal - discount + penalty + tax``; discount, penalty and tax are not
  negative (not positive on a credit note, whose tax is the tax it gives back); when it has lines, ``subtotal`` is the sum of their amounts; the period ends on or
  after its start; its currency is the customer's;
* status: ``draft -> issued | void``, ``issued -> paid | void``, ``paid -> issued`` (only when a
  refund takes back money allocated to it: it is unpaid again, see core.allocation); void is
  final. Only a draft changes; an issued invoice changes its status only (DESIGN.md: immutable
  once issued).

Each check returns :class:`Problem` values (field, value, rule) rather than raising, so a form can
show all of them at once next to their fields. Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Final

from tarifa.core.problems import Problem

__all__ = [
    "DRAFT",
    "ISSUED",
    "PAID",
    "TRANSITIONS",
    "VOID",
    "InvoiceFigures",
    "InvoiceKind",
    "InvoiceStatus",
    "LineSection",
    "Problem",
    "check_invoice",
    "check_line",
    "check_lines_sum",
    "check_status_change",
    "line_amount",
]

MONEY_PLACES: Final = 6


class InvoiceStatus(StrEnum):
    """Where an invoice is in its life cycle (the module docstring gives the transitions)."""

    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"


class InvoiceKind(StrEnum):
    """An invoice, or a credit note that corrects an issued invoice (which itself never changes)."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class LineSection(StrEnum):
    """Where a line sits on an invoice (the billing seed's invoice contents), in this order."""

    CALLS = "calls"  # calls grouped by destination: count, seconds, amount
    SERVICES = "services"  # recurring and one-time fees, minimum billing shortfalls
    USAGE = "usage"  # usage by location / cost center (informative: not added to the subtotal twice)
    DISCOUNT = "discount"
    PENALTY = "penalty"
    DEPOSIT = "deposit"
    TAX = "tax"
    ADJUSTMENT = "adjustment"  # credits and adjustments of the period, credit-note lines


DRAFT: Final = InvoiceStatus.DRAFT
ISSUED: Final = InvoiceStatus.ISSUED
PAID: Final = InvoiceStatus.PAID
VOID: Final = InvoiceStatus.VOID
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    DRAFT: frozenset({DRAFT, ISSUED, VOID}),
    ISSUED: frozenset({ISSUED, PAID, VOID}),
    PAID: frozenset({PAID, ISSUED}),  # reopened by a refund of the money that paid it
    VOID: frozenset({VOID}),
}


@dataclass(frozen=True, slots=True)
class InvoiceFigures:
    period_start: date | None
    period_end: date | None
    currency: str
    customer_currency: str | None
    subtotal: Decimal
    discount: Decimal
    penalty: Decimal
    tax: Decimal
    total: Decimal
    kind: str = "invoice"  # InvoiceKind: a credit note's discount, penalty and tax are not positive


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """``quantity × unit price`` at the money columns' precision (half-up)."""
    return _round(quantity * unit_price, MONEY_PLACES)


def check_line(
    quantity: Decimal | None, unit_price: Decimal | None, amount: Decimal | None, billing_decimals: int = MONEY_PLACES
) -> list[Problem]:
    if quantity is None or unit_price is None or amount is None:
        return []  # a missing value is refused by its field
    exact = line_amount(quantity, unit_price)
    if amount in (exact, _round(exact, billing_decimals)):
        return []
    shown = exact if billing_decimals >= MONEY_PLACES else f"{exact}, or {_round(exact, billing_decimals)}"
    return [
        Problem(
            "amount",
            "Amount",
            amount,
            f"must be quantity × unit price: {quantity} × {unit_price} = {shown}",
            "line_amount",
        )
    ]


def check_invoice(figures: InvoiceFigures) -> list[Problem]:
    f = figures
    problems: list[Problem] = []
    if f.period_start and f.period_end and f.period_end < f.period_start:
        problems.append(
            Problem(
                "period_end",
                "Period end",
                str(f.period_end),
                f"must not be before the period start {f.period_start}",
                "period_order",
            )
        )
    if f.customer_currency and f.currency != f.customer_currency:
        problems.append(
            Problem(
                "currency", "Currency", f.currency, f"must be the customer's currency {f.customer_currency}", "currency"
            )
        )
    credit_note = f.kind == InvoiceKind.CREDIT_NOTE
    for field, label, value in (
        ("discount", "Discount", f.discount),
        ("penalty", "Penalty", f.penalty),
        ("tax", "Tax", f.tax),
    ):
        if value is not None and not credit_note and value < 0:
            problems.append(Problem(field, label, value, "must not be negative", "negative"))
        if value is not None and credit_note and value > 0:
            problems.append(Problem(field, label, value, "must not be positive on a credit note", "positive"))
    parts = (f.subtotal, f.discount, f.penalty, f.tax, f.total)
    if all(part is not None for part in parts):
        expected = f.subtotal - f.discount + f.penalty + f.tax
        if f.total != expected:
            problems.append(
                Problem(
                    "total",
                    "Total",
                    f.total,
                    f"must be subtotal - discount + penalty + tax: {f.subtotal} - {f.discount} + {f.penalty} + {f.tax} "
                    f"= {expected}",
                    "total",
                )
            )
    return problems


def check_lines_sum(subtotal: Decimal | None, amounts: Iterable[Decimal]) -> list[Problem]:
    """With lines, the subtotal is their sum (no lines: a subtotal typed by hand stands)."""
    amounts = list(amounts)
    if not amounts or subtotal is None:
        return []
    total = sum(amounts, Decimal(0))
    if subtotal == total:
        return []
    return [Problem("subtotal", "Subtotal", subtotal, f"must be the sum of the line amounts ({total})", "subtotal")]


def check_status_change(stored: str, wanted: str, other_changes: dict[str, object]) -> list[Problem]:
    """An invoice out of draft changes only its status, and only along :data:`TRANSITIONS`.
    ``other_changes``: field name -> new value of every other field that differs from the stored row."""
    problems: list[Problem] = []
    if wanted not in TRANSITIONS.get(stored, frozenset({stored})):
        allowed = sorted(TRANSITIONS.get(stored, frozenset()) - {stored})
        rule = (
            f"an invoice that is {stored} may become {' or '.join(allowed)}"
            if allowed
            else (f"an invoice that is {stored} is final")
        )
        problems.append(Problem("status", "Status", wanted, rule, "status"))
    if stored != DRAFT:
        for field, value in other_changes.items():
            problems.append(
                Problem(
                    field,
                    field.replace("_", " ").capitalize(),
                    value,
                    f"the invoice is {stored} and can no longer be changed",
                    "immutable",
                )
            )
    return problems
