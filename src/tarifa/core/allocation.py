"""Which invoices the money a customer paid settles: allocation of payments and credits to issued
invoices, and what a refund takes back.

The customer's *credit sources* are its payment and credit Transactions (each an amount received);
an *open invoice* is an issued invoice with an amount still unpaid. Allocations are append-only
rows ``(source, invoice, amount)``; a refund that takes back money already allocated appends
negative rows (reversals) rather than deleting any.

Rules (each function below keeps all of them):

* never over-allocate: for every invoice the sum of its allocations stays within ``[0, total]``;
  for every source within ``[0, amount]``; and all allocations together never exceed what the
  customer paid less what was refunded (the *pool*);
* oldest first: money goes to the oldest open invoice (by issue date, then due date, then id),
  taken from the oldest source with money left; or to one chosen invoice only;
* a refund first uses the money not allocated to any invoice; only the rest is taken back from
  invoices, newest invoice first (the last settled is the first reopened), so an invoice whose
  allocations fall below its total is unpaid again.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = ["Allocation", "CreditSource", "OpenInvoice", "Placed", "allocate", "take_back"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CreditSource:
    """A payment or credit: ``amount`` received, ``allocated`` of it already placed on invoices."""

    id: int
    amount: Decimal
    allocated: Decimal = ZERO

    @property
    def left(self) -> Decimal:
        return self.amount - self.allocated


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An issued invoice: ``total`` owed, ``allocated`` already paid by allocations."""

    id: int
    issued_on: date
    total: Decimal
    allocated: Decimal = ZERO
    due_date: date | None = None

    @property
    def unpaid(self) -> Decimal:
        return self.total - self.allocated

    @property
    def order(self) -> tuple[date, date, int]:
        return (self.issued_on, self.due_date or self.issued_on, self.id)


@dataclass(frozen=True, slots=True)
class Allocation:
    """One row to append: ``amount`` of ``source_id`` placed on ``invoice_id`` (negative: taken back)."""

    source_id: int
    invoice_id: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Placed:
    """An allocation already made (the net of its rows for one source and invoice), with the
    invoice's order, newest last."""

    source_id: int
    invoice: OpenInvoice
    amount: Decimal


def allocate(
    sources: Sequence[CreditSource],
    invoices: Sequence[OpenInvoice],
    pool: Decimal,
    chosen: int | None = None,
) -> list[Allocation]:
    """The allocations that place the customer's free money on its open invoices.

    ``pool`` is what may be placed at most: payments and credits received, less refunds, less what
    is already allocated (a refund that was paid out of unallocated money is no longer there to
    place, although each source still shows it as left). ``chosen``: only that invoice (oldest
    first otherwise). Sources and invoices with nothing left are skipped."""
    budget = max(pool, ZERO)
    targets = sorted((i for i in invoices if i.unpaid > 0), key=lambda i: i.order)
    if chosen is not None:
        targets = [i for i in targets if i.id == chosen]
    free_ids = [s.id for s in sorted(sources, key=lambda s: s.id) if s.left > 0]
    left = {s.id: s.left for s in sources}
    out: list[Allocation] = []
    at = 0
    for invoice in targets:
        need = invoice.unpaid
        while need > 0 and budget > 0 and at < len(free_ids):
            source_id = free_ids[at]
            amount = min(need, left[source_id], budget)
            out.append(Allocation(source_id, invoice.id, amount))
            need -= amount
            budget -= amount
            left[source_id] -= amount
            if left[source_id] <= 0:
                at += 1
        if budget <= 0 or at >= len(free_ids):
            break
    return out


def take_back(refund: Decimal, unallocated: Decimal, placed: Sequence[Placed]) -> list[Allocation]:
    """The reversals a refund of ``refund`` needs: what ``unallocated`` money cannot cover is taken
    back from the invoices, newest first (within an invoice, the newest source first)."""
    owed = refund - max(unallocated, ZERO)
    out: list[Allocation] = []
    for p in sorted(placed, key=lambda p: (p.invoice.order, p.source_id), reverse=True):
        if owed <= 0:
            break
        if p.amount <= 0:
            continue
        amount = min(owed, p.amount)
        out.append(Allocation(p.source_id, p.invoice.id, -amount))
        owed -= amount
    return out
