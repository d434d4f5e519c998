"""Reading a customer's statement of account and the aged receivables out of the ledger and the
invoices (rules: :mod:`tarifa.core.statement`), and writing them as CSV (:mod:`tarifa.exports`:
no cell runs as a spreadsheet formula). One reader for every door: ``tarifa statement`` and
``tarifa receivables``, the back-office pages and the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import tablib
from django.db.models import Q, QuerySet, Sum

from tarifa.billing.allocation import allocated_by_invoice
from tarifa.billing.choices import InvoiceKind, InvoiceStatus
from tarifa.billing.models import Invoice, Transaction
from tarifa.core.instants import day_rule
from tarifa.core.payments import Refused
from tarifa.core.statement import BUCKETS, Aging, ReceivableInvoice, Statement, StatementRow, age, build_statement
from tarifa.customers.models import Customer
from tarifa.validators import DAY_MAX, DAY_MIN, DAY_RULE

__all__ = [
    "csv_text",
    "money_text",
    "parse_day",
    "receivables",
    "receivables_dataset",
    "statement",
    "statement_dataset",
]

ZERO = Decimal(0)


def money_text(amount: Decimal) -> str:
    """An amount for people and files: at least 2 decimals, no trailing zeros past them
    (``40.000000`` -> ``40.00``, ``0.012500`` -> ``0.0125``)."""
    places = max(2, -amount.normalize().as_tuple().exponent) if amount else 2  # type: ignore[operator]
    return f"{amount:.{places}f}"


def parse_day(text: str | None, field: str) -> date | None:
    """A day typed as YYYY-MM-DD, or :class:`Refused` naming the field."""
    if text is None or not str(text).strip():
        return None
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise Refused(field, text, day_rule(str(text))) from None


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def statement(
    customer: Customer,
    start: date | None = None,
    end: date | None = None,
    *,
    fields: tuple[str, str] = ("from", "to"),
) -> Statement:
    """The customer's own balance (not that of its accounts with their own) from ``start`` to
    ``end`` inclusive (UTC days; None: from the first Transaction, to now). ``fields`` name the two
    days in a refusal as the caller's door calls them."""
    for field, day in zip(fields, (start, end), strict=True):
        if day is not None and not DAY_MIN <= day <= DAY_MAX:
            raise Refused(field, day.isoformat(), DAY_RULE)
    if start is not None and end is not None and end < start:
        raise Refused(fields[1], end.isoformat(), f"must not be before the start {start.isoformat()}")
    own = Transaction.objects.filter(customer_id=customer.pk, account__isnull=True)
    opening = ZERO
    rows = own
    if start is not None:
        opening = own.filter(created_at__lt=_moment(start)).aggregate(s=Sum("amount"))["s"] or ZERO
        rows = rows.filter(created_at__gte=_moment(start))
    if end is not None:
        rows = rows.filter(created_at__lt=_moment(end + timedelta(days=1)))
    found = [
        StatementRow(pk, at, kind, description, reference or "", amount)
        for pk, at, kind, description, reference, amount in rows.order_by("created_at", "id").values_list(
            "pk", "created_at", "kind", "description", "reference", "amount"
        )
    ]
    return build_statement(opening, found, customer.currency, start, end)


def receivables(
    customers: QuerySet[Customer] | Iterable[Customer], as_of: date | None = None
) -> list[tuple[Customer, Aging]]:
    """Aged receivables of each customer with an unpaid issued invoice (on ``as_of``, default today UTC)."""
    as_of = as_of or datetime.now(UTC).date()
    ids = [c.pk for c in customers]
    invoices = list(
        Invoice.objects.filter(customer_id__in=ids, kind=InvoiceKind.INVOICE, status=InvoiceStatus.ISSUED).values_list(
            "pk", "customer_id", "number", "issued_at", "period_end", "due_date", "total"
        )
    )
    paid = allocated_by_invoice([row[0] for row in invoices])
    per_customer: dict[int, list[ReceivableInvoice]] = {}
    for pk, customer_id, number, issued, end, due, total in invoices:
        per_customer.setdefault(customer_id, []).append(
            ReceivableInvoice(pk, number, issued.date() if issued else end, due, total, paid.get(pk, ZERO))
        )
    out = []
    for customer in Customer.objects.filter(pk__in=list(per_customer)).order_by("company", "pk"):
        aging = age(per_customer[customer.pk], as_of)
        if aging.total > 0:
            out.append((customer, aging))
    return out


def statement_dataset(customer: Customer, st: Statement) -> tablib.Dataset:
    data = tablib.Dataset(headers=["date", "transaction", "kind", "description", "reference", "amount", "balance"])
    data.title = f"Statement {customer.account_code}"
    first = st.start.isoformat() if st.start else ""
    data.append([first, "", "opening balance", "", "", "", money_text(st.opening)])
    for line in st.lines:
        r = line.row
        data.append(
            [r.at.isoformat(), r.id, r.kind, r.description, r.reference, money_text(r.amount), money_text(line.balance)]
        )
    data.append([st.end.isoformat() if st.end else "", "", "closing balance", "", "", "", money_text(st.closing)])
    return data


def receivables_dataset(rows: list[tuple[Customer, Aging]]) -> tablib.Dataset:
    data = tablib.Dataset(headers=["account code", "company", "currency", "current", *BUCKETS, "total"])
    data.title = "Aged receivables"
    for customer, aging in rows:
        data.append(
            [
                customer.account_code,
                customer.company,
                customer.currency,
                money_text(aging.current),
                *(money_text(aging.buckets[b]) for b in BUCKETS),
                money_text(aging.total),
            ]
        )
    return data


def csv_text(data: tablib.Dataset) -> str:
    from tarifa.exports import SafeCSV

    return str(SafeCSV().export_data(data))


def in_scope(viewer: Customer) -> Q:
    """Customers a reseller or operator may see (itself and its subtree)."""
    return viewer.in_subtree()
