"""A customer's statement of account and its aged receivables.

Statement for a date range ``[start, end]`` (days in UTC): the *opening balance* is the sum of
every Transaction of the balance before ``start`` (the ledger's balance = sum of its Transactions,
DESIGN.md §6); each Transaction of the range follows with the running balance after it; the
*closing balance* is the opening balance plus the range's Transactions, which is the customer's
balance at the end of ``end`` -- the balance history, to the cent, whatever the Transactions' kinds.

Aged receivables: every issued invoice's unpaid amount (total less its allocations), put in a
bucket by the days past its due date on the day asked:

==========  =============================================================
bucket      days past due
==========  =============================================================
``0-30``    not yet due (also shown apart as ``current``) up to 30 days
``31-60``   31 to 60
``61-90``   61 to 90
``90+``     more than 90
==========  =============================================================

An invoice without a due date is due on its issue date. Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Final

__all__ = [
    "BUCKETS",
    "Aging",
    "ReceivableInvoice",
    "Statement",
    "StatementLine",
    "StatementRow",
    "age",
    "bucket_of",
    "build_statement",
    "retry_after_seconds",
]

ZERO = Decimal(0)
BUCKETS: Final = ("0-30", "31-60", "61-90", "90+")


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One Transaction of the range, as stored."""

    id: int
    at: datetime
    kind: str
    description: str
    reference: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class StatementLine:
    row: StatementRow
    balance: Decimal  # after this Transaction


@dataclass(frozen=True, slots=True)
class Statement:
    start: date | None
    end: date | None
    currency: str
    opening: Decimal
    lines: tuple[StatementLine, ...]
    closing: Decimal
    money_in: Decimal
    money_out: Decimal


def build_statement(
    opening: Decimal, rows: Iterable[StatementRow], currency: str, start: date | None, end: date | None
) -> Statement:
    """The statement: rows in ledger order (time, then id), each with the running balance."""
    running = opening
    lines = []
    money_in = money_out = ZERO
    for row in sorted(rows, key=lambda r: (r.at, r.id)):
        running += row.amount
        if row.amount > 0:
            money_in += row.amount
        else:
            money_out -= row.amount
        lines.append(StatementLine(row, running))
    return Statement(start, end, currency, opening, tuple(lines), running, money_in, money_out)


@dataclass(frozen=True, slots=True)
class ReceivableInvoice:
    id: int
    number: str
    issued_on: date
    due_date: date | None
    total: Decimal
    paid: Decimal  # allocated

    @property
    def unpaid(self) -> Decimal:
        return self.total - self.paid

    @property
    def due(self) -> date:
        return self.due_date or self.issued_on


def bucket_of(days_past_due: int) -> str:
    if days_past_due <= 30:
        return "0-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


@dataclass(frozen=True, slots=True)
class Aging:
    """One customer's unpaid invoices by bucket on ``as_of``."""

    as_of: date
    buckets: dict[str, Decimal]
    current: Decimal  # not yet due (part of 0-30)
    total: Decimal
    invoices: tuple[tuple[ReceivableInvoice, int, str], ...] = field(default=())  # invoice, days past due, bucket


def age(invoices: Sequence[ReceivableInvoice], as_of: date) -> Aging:
    """Unpaid amounts by bucket; fully paid invoices (or overpaid, which allocation never makes) are left out."""
    buckets = dict.fromkeys(BUCKETS, ZERO)
    current = ZERO
    listed = []
    for invoice in sorted(invoices, key=lambda i: (i.due, i.id)):
        if invoice.unpaid <= 0:
            continue
        days = (as_of - invoice.due).days
        name = bucket_of(days)
        buckets[name] += invoice.unpaid
        if days <= 0:
            current += invoice.unpaid
        listed.append((invoice, days, name))
    return Aging(as_of, buckets, current, sum(buckets.values(), ZERO), tuple(listed))


#: waits after 1, 2, 3, ... declines in a row of an automatic top-up: an hour, then doubling, at most a day
_FIRST_WAIT: Final = 3600
_LONGEST_WAIT: Final = 86400


def retry_after_seconds(declines_in_a_row: int) -> int:
    """How long an automatic top-up waits after its ``n``-th decline in a row before it charges
    again: one hour, doubling each time, at most one day (no charge storm on a dead card)."""
    if declines_in_a_row <= 0:
        return 0
    wait: int = _FIRST_WAIT * 2 ** min(declines_in_a_row - 1, 16)
    return min(_LONGEST_WAIT, wait)
