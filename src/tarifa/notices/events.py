"""Notices of billing events: an invoice issued, a payment received, money added (re-arms the
low-balance notice). The receivers queue after the sender's transaction commits and never raise
into it: an invoice run or a payment is never slowed down or undone by a notice."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.signals import pre_save
from django.utils import timezone

from tarifa.billing.models import Invoice, Transaction
from tarifa.billing.signals import invoice_issued, money_added, payment_received
from tarifa.core.invoices import InvoiceKind, InvoiceStatus
from tarifa.core.notices import NoticeKind, money_text
from tarifa.customers.models import Account
from tarifa.notices.models import NoticeSettings, Outbox
from tarifa.notices.queue import Notice, customer_addresses, enqueue, template_for

log = logging.getLogger(__name__)

#: how far back the worker looks for issued invoices whose notice was not queued (a crash between
#: the invoice's commit and the receiver): older ones are not e-mailed out of the blue
CATCH_UP = timedelta(days=3)


def invoice_key(invoice_id: int) -> str:
    return f"invoice_issued:{invoice_id}"


def queue_invoice(invoice: Invoice, now: datetime | None = None) -> bool:
    """Queue the invoice-issued e-mail (the PDF is attached when it is sent)."""
    return queue_invoices([invoice], now) == 1


def queue_invoices(invoices: Sequence[Invoice], now: datetime | None = None) -> int:
    """Queue the invoice-issued e-mails of ``invoices`` (their ``customer`` loaded); the template
    and the customers' notice addresses are read once for all. Returns how many were queued now."""
    now = now or timezone.now()
    if not invoices:
        return 0
    templates = {kind: template_for(kind) for kind in {_kind(inv) for inv in invoices}}
    own = dict(
        NoticeSettings.objects.filter(customer_id__in={inv.customer_id for inv in invoices}).values_list(
            "customer_id", "emails"
        )
    )
    queued = 0
    for invoice in invoices:
        customer = invoice.customer
        kind = _kind(invoice)
        context = {
            "customer_name": customer.name,
            "company": customer.company,
            "account_code": customer.account_code,
            "currency": invoice.currency,
            "issued_on": invoice.issued_at.date().isoformat() if invoice.issued_at else "",
            "period_start": invoice.period_start.isoformat(),
            "period_end": invoice.period_end.isoformat(),
        }
        if kind == NoticeKind.CREDIT_NOTE_ISSUED:
            credited = (
                Invoice.objects.filter(pk=invoice.credited_invoice_id).values_list("number", flat=True).first()
                if invoice.credited_invoice_id is not None
                else None
            )
            context |= {
                "credit_note_number": invoice.number,
                "invoice_number": credited or "",
                "amount": money_text(-invoice.total),  # what the customer gets back: positive
                "net": money_text(-(invoice.total - invoice.tax)),
                "tax": money_text(-invoice.tax),
            }
        else:
            context |= {
                "invoice_number": invoice.number,
                "total": money_text(invoice.total),
                "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
            }
        notice = Notice(
            kind=kind,
            key=invoice_key(invoice.pk),
            addresses=(own.get(customer.pk) or "", customer.email),
            context=context,
            customer_id=customer.pk,
            invoice_id=invoice.pk,
        )
        queued += 1 if enqueue(notice, now, templates[kind]) else 0
    return queued


def _kind(invoice: Invoice) -> NoticeKind:
    """The notice of an issued document: a credit note has its own ("Credit note ..."), not the invoice's."""
    return NoticeKind.CREDIT_NOTE_ISSUED if invoice.kind == InvoiceKind.CREDIT_NOTE else NoticeKind.INVOICE_ISSUED


def queue_receipt(payment: Transaction, now: datetime | None = None) -> bool:
    """Queue the payment receipt."""
    now = now or timezone.now()
    customer = payment.customer
    context = {
        "customer_name": customer.name,
        "company": customer.company,
        "account_code": customer.account_code,
        "currency": payment.currency,
        "amount": money_text(payment.amount),
        "balance": money_text(payment.balance_after),
        "reference": payment.reference or "",
        "paid_on": payment.created_at.date().isoformat(),
    }
    notice = Notice(
        kind=NoticeKind.PAYMENT_RECEIVED,
        key=f"payment_received:{payment.pk}",
        addresses=customer_addresses(customer.pk, customer.email),
        context=context,
        customer_id=customer.pk,
    )
    return enqueue(notice, now)


def rearm(customer_id: int, now: datetime | None = None) -> None:
    """Money added: the customer's (and its accounts') low-balance notice may fire at once on the
    next crossing, and the daily reminder of the current one stops if the funds now cover it."""
    now = now or timezone.now()
    if NoticeSettings.objects.filter(customer_id=customer_id).update(rearmed_at=now):
        return
    try:
        with transaction.atomic():
            NoticeSettings.objects.create(customer_id=customer_id, rearmed_at=now)
    except IntegrityError:  # created at the same moment by another session
        NoticeSettings.objects.filter(customer_id=customer_id).update(rearmed_at=now)


def queue_missed_invoices(now: datetime | None = None) -> int:
    """Issued invoices of the last ``CATCH_UP`` without an invoice notice: queue them (the worker's
    safety net for a receiver that did not run)."""
    now = now or timezone.now()
    missed = (
        Invoice.objects.filter(issued_at__gte=now - CATCH_UP, status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PAID])
        .exclude(
            pk__in=Outbox.objects.filter(
                kind__in=[NoticeKind.INVOICE_ISSUED, NoticeKind.CREDIT_NOTE_ISSUED], invoice__isnull=False
            ).values("invoice_id")
        )
        .select_related("customer")
    )
    return queue_invoices(list(missed), now)


def _after_commit(what: str, action: Any) -> None:
    def run() -> None:
        try:
            action()
        except Exception:  # a notice never breaks the money transaction's caller; the worker catches up
            log.exception("the %s notice was not queued", what)

    transaction.on_commit(run)


def _on_invoice(sender: Any, invoice: Invoice, **kwargs: Any) -> None:
    _after_commit("invoice-issued", lambda: queue_invoice(invoice))


def _on_payment(sender: Any, transaction: Transaction, **kwargs: Any) -> None:
    _after_commit("payment-received", lambda: queue_receipt(transaction))


def _on_money(sender: Any, customer_id: int, **kwargs: Any) -> None:
    _after_commit("low-balance re-arm", lambda: rearm(customer_id))


def _on_account_saving(sender: Any, instance: Account, raw: bool = False, **kwargs: Any) -> None:
    """An account's balance threshold changed: re-arm (seed 001: the e-mails go on "until you add
    new funds ... or you change the balance threshold")."""
    if raw or instance.pk is None:
        return
    stored = Account.objects.filter(pk=instance.pk).values_list("balance_threshold", flat=True).first()
    if stored != instance.balance_threshold:
        customer_id = instance.customer_id
        _after_commit("low-balance re-arm", lambda: rearm(customer_id))


def connect_signals() -> None:
    pre_save.connect(_on_account_saving, sender=Account, dispatch_uid="tarifa.notices.account_threshold")
    invoice_issued.connect(_on_invoice, dispatch_uid="tarifa.notices.invoice_issued")
    payment_received.connect(_on_payment, dispatch_uid="tarifa.notices.payment_received")
    money_added.connect(_on_money, dispatch_uid="tarifa.notices.money_added")
