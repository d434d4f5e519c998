"""Every portal query starts here, from the one customer the page acts for: another tenant's id is
never found (a 404), whatever the URL or the form says."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from tarifa.calls.models import Reservation
from tarifa.cdrs.models import Cdr
from tarifa.customers.models import Account, Customer

__all__ = ["account_of", "accounts", "calls_in_progress", "cdr_of", "cdrs"]


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
