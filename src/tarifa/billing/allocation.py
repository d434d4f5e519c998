"""Storage of the allocation of payments to invoices (rules: :mod:`tarifa.core.allocation`).

Every function here runs under the customer's balance lock (the row lock ``ledger.post`` takes),
so two payments, a refund and an invoice run of one customer allocate one after the other and the
sums never go past an invoice's total or a payment's amount.

Entry points:

* :func:`allocate_new_money` -- called by the payment services right after a payment or credit is
  posted (oldest open invoice first, or the invoice chosen);
* :func:`take_back_for_refund` -- called when a refund is posted;
* :func:`apply_unallocated` -- **for the invoice run and the worker**: places the customer's money
  not yet allocated on its open invoices (call it after issuing invoices; idempotent);
  :func:`apply_all_unallocated` does it for every customer with an open invoice (the worker).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum

from tarifa.billing.choices import InvoiceKind, InvoiceStatus, TransactionKind
from tarifa.billing.models import Invoice, PaymentAllocation, Transaction
from tarifa.core import allocation as rule
from tarifa.customers.models import Customer

__all__ = [
    "CREDIT_TAX_SUFFIX",
    "allocate_new_money",
    "allocated_by_invoice",
    "apply_all_unallocated",
    "apply_unallocated",
    "take_back_for_refund",
    "unallocated",
]

ZERO = Decimal(0)
SOURCE_KINDS = (TransactionKind.PAYMENT, TransactionKind.CREDIT)
#: The tax a credit note gives back is posted as a TAX Transaction with this reference suffix
#: (``<credit note number>:credit-tax``); it is the customer's money like the note's CREDIT.
CREDIT_TAX_SUFFIX = ":credit-tax"
#: Transactions that are money to place on invoices.
SOURCES = Q(kind__in=SOURCE_KINDS, amount__gt=0) | Q(
    kind=TransactionKind.TAX, amount__gt=0, reference__endswith=CREDIT_TAX_SUFFIX
)
_MONEY = Sum("allocations__amount")


def _lock(customer_id: int) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("allocation must run inside a database transaction")
    Customer.objects.select_for_update(no_key=True).filter(pk=customer_id).values_list("pk").first()


def _sources(customer_id: int) -> list[rule.CreditSource]:
    rows = (
        Transaction.objects.filter(SOURCES, customer_id=customer_id)
        .annotate(placed=_MONEY)
        .values_list("pk", "amount", "placed")
    )
    return [rule.CreditSource(pk, amount, placed or ZERO) for pk, amount, placed in rows]


def _open_invoices(customer_id: int, **extra: object) -> list[rule.OpenInvoice]:
    rows = (
        Invoice.objects.filter(customer_id=customer_id, kind=InvoiceKind.INVOICE, **extra)
        .annotate(placed=_MONEY)
        .values_list("pk", "issued_at", "period_end", "due_date", "total", "placed")
    )
    return [
        rule.OpenInvoice(pk, (issued.date() if issued else end), total, placed or ZERO, due)
        for pk, issued, end, due, total, placed in rows
    ]


def unallocated(customer_id: int) -> Decimal:
    """Payments and credits received, less refunds, less what is allocated: money that may still
    be placed on invoices (never below 0)."""
    return max(ZERO, _free(customer_id))


def _free(customer_id: int) -> Decimal:
    sums = Transaction.objects.filter(customer_id=customer_id).aggregate(
        received=Sum("amount", filter=SOURCES),
        refunded=Sum("amount", filter=Q(kind=TransactionKind.REFUND)),
    )
    placed = PaymentAllocation.objects.filter(source__customer_id=customer_id).aggregate(s=Sum("amount"))["s"] or ZERO
    return Decimal((sums["received"] or ZERO) + (sums["refunded"] or ZERO) - placed)


def allocated_by_invoice(invoice_ids: list[int]) -> dict[int, Decimal]:
    """The amount allocated to each invoice (absent: nothing)."""
    rows = (
        PaymentAllocation.objects.filter(invoice_id__in=invoice_ids)
        .values("invoice_id")
        .annotate(s=Sum("amount"))
        .values_list("invoice_id", "s")
    )
    return dict(rows)


def _write(rows: list[rule.Allocation], refund: Transaction | None = None) -> list[PaymentAllocation]:
    made = PaymentAllocation.objects.bulk_create(
        [
            PaymentAllocation(source_id=a.source_id, invoice_id=a.invoice_id, amount=a.amount, refund=refund)
            for a in rows
        ]
    )
    _settle({a.invoice_id for a in rows})
    return made


def _settle(invoice_ids: set[int]) -> None:
    """Paid when the allocations reach the total; issued again when a refund took money back."""
    if not invoice_ids:
        return
    placed = allocated_by_invoice(sorted(invoice_ids))
    for invoice in Invoice.objects.filter(pk__in=invoice_ids).order_by("pk"):
        paid = placed.get(invoice.pk, ZERO) >= invoice.total
        wanted = InvoiceStatus.PAID if paid else InvoiceStatus.ISSUED
        if invoice.status in (InvoiceStatus.ISSUED, InvoiceStatus.PAID) and invoice.status != wanted:
            invoice.status = wanted
            invoice.save(update_fields=["status", "updated_at"])


def allocate_new_money(customer_id: int, invoice_id: int | None = None) -> list[PaymentAllocation]:
    """Place the customer's free money (the payment just posted among it) on its open invoices:
    oldest first, or only ``invoice_id``. Runs inside the caller's database transaction."""
    _lock(customer_id)
    return _apply(customer_id, invoice_id)


def _apply(customer_id: int, invoice_id: int | None = None) -> list[PaymentAllocation]:
    invoices = _open_invoices(customer_id, status=InvoiceStatus.ISSUED)
    if not invoices:
        return []
    rows = rule.allocate(_sources(customer_id), invoices, unallocated(customer_id), chosen=invoice_id)
    return _write(rows)


def apply_unallocated(customer_id: int) -> list[PaymentAllocation]:
    """Place money paid earlier and not yet allocated on the customer's open invoices, oldest first.

    **The invoice run calls this after issuing a customer's invoices** (the worker also sweeps
    every customer with :func:`apply_all_unallocated`). Safe to call any time: without free money
    or open invoices it writes nothing."""
    with transaction.atomic():
        _lock(customer_id)
        return _apply(customer_id)


def apply_all_unallocated() -> int:
    """:func:`apply_unallocated` for every customer with an issued invoice not paid and money not
    yet allocated; the number of allocations written. Three grouped queries find them, so a sweep
    over many customers with nothing to place costs no transaction per customer."""
    customers = set(
        Invoice.objects.filter(kind=InvoiceKind.INVOICE, status=InvoiceStatus.ISSUED)
        .values_list("customer_id", flat=True)
        .distinct()
    )
    if not customers:
        return 0
    free: dict[int, Decimal] = {}
    for pk, received, refunded in (
        Transaction.objects.filter(customer_id__in=customers)
        .values("customer_id")
        .annotate(
            received=Sum("amount", filter=SOURCES),
            refunded=Sum("amount", filter=Q(kind=TransactionKind.REFUND)),
        )
        .values_list("customer_id", "received", "refunded")
    ):
        free[pk] = (received or ZERO) + (refunded or ZERO)
    for pk, placed in (
        PaymentAllocation.objects.filter(source__customer_id__in=customers)
        .values("source__customer_id")
        .annotate(s=Sum("amount"))
        .values_list("source__customer_id", "s")
    ):
        free[pk] = free.get(pk, ZERO) - (placed or ZERO)
    return sum(len(apply_unallocated(pk)) for pk in sorted(pk for pk, money in free.items() if money > 0))


def take_back_for_refund(customer_id: int, refund: Transaction) -> list[PaymentAllocation]:
    """After ``refund`` was posted (under the same lock): the money the refund needs beyond the
    unallocated money is taken back from the newest invoices first, which become unpaid again."""
    _lock(customer_id)
    amount = -refund.amount
    free_before = _free(customer_id) + amount  # the money free before this refund (already posted)
    placed = []
    invoices = {i.id: i for i in _open_invoices(customer_id, status__in=(InvoiceStatus.ISSUED, InvoiceStatus.PAID))}
    rows = (
        PaymentAllocation.objects.filter(invoice_id__in=list(invoices))
        .values("source_id", "invoice_id")
        .annotate(s=Sum("amount"))
        .values_list("source_id", "invoice_id", "s")
    )
    for source_id, invoice_id, net in rows:
        placed.append(rule.Placed(source_id, invoices[invoice_id], net))
    reversals = rule.take_back(amount, free_before, placed)
    return _write(reversals, refund=refund)
