"""The "log in as" feature: a staff user (permission ``audit.log_in_as``) or a reseller opens one of its
customers' portal as that customer (docs/portal.md).

Each session is a row of ``audit.ViewAsSession`` (who, when, which customer, from where, when it
ended), kept in the Django session under ``SESSION_KEY`` by its id. The portal's gate
(``access.customer_view``) asks :func:`current` on every request, which checks again that the
session is open, belongs to the logged-in user and that the user may still see that customer: a
permission taken away or a customer moved out of a reseller's subtree ends the view at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from tarifa.audit.models import ViewAsSession
from tarifa.changes import Actor, address_of
from tarifa.customers.choices import CustomerKind, Status
from tarifa.customers.models import Customer

__all__ = ["PERMISSION", "SESSION_KEY", "Viewing", "actor", "current", "end", "start", "viewable_by"]

PERMISSION = "audit.log_in_as"
SESSION_KEY = "tarifa_portal_view_as"

#: The customers one can view as: those with a portal of their own.
VIEWABLE_KINDS = (CustomerKind.CUSTOMER, CustomerKind.RESELLER, CustomerKind.PARTNER)


@dataclass(frozen=True)
class Viewing:
    """An open "log in as" session: the row and the customer shown."""

    session: ViewAsSession
    customer: Customer


def _reseller_of(user: Any) -> Customer | None:
    """The reseller whose portal user ``user`` is (an active one), or None."""
    if not user.is_authenticated or not user.is_active or user.is_staff or user.is_superuser:
        return None
    try:
        customer: Customer | None = user.customer
    except (AttributeError, Customer.DoesNotExist):
        return None
    if customer is None or customer.kind != CustomerKind.RESELLER or customer.status != Status.ACTIVE:
        return None
    return customer


def is_staff_viewer(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION))


def viewable_by(user: Any) -> QuerySet[Customer]:
    """The customers ``user`` may view as: every portal customer for staff with the permission, the
    customers of its own subtree (not itself) for a reseller, none for anyone else."""
    found = Customer.objects.filter(kind__in=VIEWABLE_KINDS)
    if is_staff_viewer(user):
        return found
    reseller = _reseller_of(user)
    if reseller is None:
        return found.none()
    return found.filter(reseller.in_subtree()).exclude(pk=reseller.pk)


def start(request: HttpRequest, customer_id: int) -> Viewing:
    """Open a session as customer ``customer_id`` (404 when ``request.user`` may not view it)."""
    customer = viewable_by(request.user).filter(pk=customer_id).first()
    if customer is None:
        raise Http404("no such customer")
    end(request)  # one view at a time
    user: Any = request.user
    via = ViewAsSession.Via.ADMIN if user.is_staff else ViewAsSession.Via.RESELLER
    row = ViewAsSession.objects.create(
        user_id=user.pk,
        actor=user.get_username()[:200],
        via=via,
        customer_id=customer.pk,
        customer_repr=str(customer)[:200],
        address=address_of(request.META),
    )
    request.session[SESSION_KEY] = row.pk
    return Viewing(row, customer)


def current(request: HttpRequest) -> Viewing | None:
    """The open session of this request's user, still allowed; otherwise None (and a stale one is ended)."""
    pk = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if pk is None:
        return None
    row = ViewAsSession.objects.filter(pk=pk, ended_at__isnull=True).first()
    customer = None
    if row is not None and row.user_id == request.user.pk:
        customer = viewable_by(request.user).filter(pk=row.customer_id).first()
    if row is None or customer is None:
        end(request)
        return None
    return Viewing(row, customer)


def end(request: HttpRequest) -> ViewAsSession | None:
    """End this request's session, if any: its row gets ``ended_at`` (once)."""
    pk = request.session.pop(SESSION_KEY, None) if hasattr(request, "session") else None
    if pk is None:
        return None
    ViewAsSession.objects.filter(pk=pk, ended_at__isnull=True).update(ended_at=timezone.now())
    return ViewAsSession.objects.filter(pk=pk).first()


def actor(request: HttpRequest, viewing: Viewing | None) -> Actor:
    """Who a change made in the portal is written to in the audit log: the logged-in user (the
    staff user or the reseller while viewing as, with the customer named), from the client's address."""
    user: Any = request.user
    label = user.get_username()
    if viewing is not None:
        label = f"{label} (as {viewing.customer.web_username})"
    return Actor(user_id=user.pk, label=label, address=address_of(request.META), via="portal")
