"""Who may see the portal: a logged-in customer user (never staff), and what it may see.

The one gate of every portal view (:func:`customer_view`): no customer user, no page. Staff use
the back office (``/admin/``) and are sent to the portal's log-in here; a customer user can never
open the back office, which requires ``is_staff`` (``set_web_access`` never sets it).

"Log in as" (``portal/viewas.py``) reuses the same views: a staff user with the permission or a
reseller (one customer of its subtree, ``Customer.in_subtree``) opens a session, and the views
receive that customer as ``request.portal_customer`` (``request.portal_viewing`` says who views).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from tarifa.customers.choices import CustomerKind, Status
from tarifa.customers.models import Customer
from tarifa.portal import viewas

__all__ = ["customer_of", "customer_view", "may_use_portal"]

#: Customer kinds that log in to the portal: the operator works in the back office.
PORTAL_KINDS = (CustomerKind.CUSTOMER, CustomerKind.RESELLER, CustomerKind.PARTNER)


def may_use_portal(user: Any) -> bool:
    """A portal user: active, not staff, with an active customer that is not the operator."""
    if user is None or not user.is_authenticated or not user.is_active or user.is_staff or user.is_superuser:
        return False
    customer = customer_of(user)
    return customer is not None and customer.kind in PORTAL_KINDS and customer.status == Status.ACTIVE


def customer_of(user: Any) -> Customer | None:
    """The customer whose portal log-in ``user`` is, or None."""
    try:
        customer: Customer | None = user.customer
    except (ObjectDoesNotExist, AttributeError):
        return None
    return customer


View = Callable[..., HttpResponse]


def customer_view(view: View) -> View:
    """Require a portal user; the view gets ``request.portal_customer`` (the customer it acts for)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        viewing = viewas.current(request)  # "log in as": a staff user or a reseller, still allowed
        request.portal_viewing = viewing  # type: ignore[attr-defined]
        if viewing is not None:
            request.portal_customer = viewing.customer  # type: ignore[attr-defined]
        elif may_use_portal(request.user):
            request.portal_customer = customer_of(request.user)  # type: ignore[attr-defined]
        else:
            return redirect_to_login(request.get_full_path(), reverse("portal:login"), REDIRECT_FIELD_NAME)
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    return wrapped
