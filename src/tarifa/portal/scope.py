"""Every portal query starts here, from the one customer the page acts for: another tenant's id is
never found (a 404), whatever the URL or the form says."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import Http404

from tarifa.billing.models import AutoTopUp, Invoice, PaymentMethod, Transaction
from tarifa.calls.models import Reservation
from tarifa.cdrs.models import Cdr
from tarifa.customers.models import Account, Customer

__all__ = [
    "account_of",
    "accounts",
    "auto_top_up",
    "calls_in_progress",
    "cdr_of",
    "cdrs",
    "invoice_of",
    "invoices",
    "money_movements",
    "payment_methods",
    "zone",
]

#: The Transactions the payment history shows: money in (payments, credits) and out (refunds).
MONEY_KINDS = ("payment", "credit", "refund")


def accounts(customer: Customer) -> QuerySet[Account]:
    """The customer's own accounts (its sub-accounts)."""
    return Account.objects.filter(customer_id=customer.pk).order_by("name", "pk")


def account_of(customer: Customer, account_id: object) -> Account:
    """One of the customer's accounts by id; any other id (another customer's, malformed) is a 404."""
    try:
        pk = int(str(account_id))
    except ValueError:
        raise Http404("no such account") from None
    found = accounts(customer).filter(pk=pk).first()
    if found is None:
        raise Http404("no such account")
    return found


def cdrs(customer: Customer) -> QuerySet[Cdr]:
    """The customer's calls: the CDRs rated to it (its accounts), as soon as they are stored."""
    return Cdr.objects.filter(customer_id=customer.pk)


def cdr_of(customer: Customer, cdr_id: object) -> Cdr:
    try:
        pk = int(str(cdr_id))
    except ValueError:
        raise Http404("no such call") from None
    found = cdrs(customer).select_related("account").filter(pk=pk).first()
    if found is None:
        raise Http404("no such call")
    return found


def calls_in_progress(customer: Customer) -> QuerySet[Reservation]:
    """Calls authorised and not ended yet (their reservations), newest first."""
    return Reservation.objects.filter(customer_id=customer.pk).select_related("account").order_by("-created_at")


def invoices(customer: Customer) -> QuerySet[Invoice]:
    """The customer's invoices and credit notes once issued (a draft is the operator's work in progress)."""
    return Invoice.objects.filter(customer_id=customer.pk).exclude(status="draft")


def invoice_of(customer: Customer, invoice_id: object) -> Invoice:
    """One of the customer's issued invoices or credit notes by id; any other id is a 404."""
    try:
        pk = int(str(invoice_id))
    except ValueError:
        raise Http404("no such invoice") from None
    found = invoices(customer).select_related("customer", "issuer", "credited_invoice").filter(pk=pk).first()
    if found is None:
        raise Http404("no such invoice")
    return found


def money_movements(customer: Customer) -> QuerySet[Transaction]:
    """The customer's payments, credits and refunds (its own balance and its accounts'), newest first."""
    return Transaction.objects.filter(customer_id=customer.pk, kind__in=MONEY_KINDS).order_by("-created_at", "-id")


def payment_methods(customer: Customer) -> QuerySet[PaymentMethod]:
    """The customer's saved payment methods (their tokens are never shown)."""
    return PaymentMethod.objects.filter(customer_id=customer.pk).order_by("-is_default", "id")


def auto_top_up(customer: Customer) -> AutoTopUp:
    """The customer's automatic top-up setting, or a new unsaved one (created on the first save)."""
    return AutoTopUp.objects.filter(customer_id=customer.pk).first() or AutoTopUp(customer=customer, enabled=False)


def zone(customer: Customer) -> ZoneInfo:
    """The customer's time zone, in which its pages show days (UTC if it names none, or an unknown one)."""
    try:
        return ZoneInfo(customer.time_zone or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")
