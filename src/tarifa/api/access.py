"""Who calls the management API and what it may do: a token (scopes, expiry, subtree, rate limit)
or a logged-in staff user of the back office (its Django permissions; CSRF on unsafe methods).

Every management operation takes ``auth=MANAGEMENT`` and then asks the ``Caller`` it gets:
``caller.may(area, action, model)`` for the operation, ``caller.root`` for where it may look
(``None``: the operator, everything; else that customer's subtree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from tarifa.api.models import ApiToken, RateWindow
from tarifa.api.problems import Problem, wrong_token
from tarifa.changes import Actor, address_of
from tarifa.core import scopes as sc
from tarifa.customers.models import Customer

#: How long rate-limit windows are kept before they are deleted (as new ones are opened).
WINDOWS_KEPT = timedelta(hours=1)

_ACTIONS = ("view", "add", "change", "delete")


@dataclass(frozen=True)
class Caller:
    """The authenticated party of one request."""

    label: str
    root: Customer | None  # None: the operator (sees everything)
    token: ApiToken | None = None
    user: Any = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def operator(self) -> bool:
        return self.root is None

    def may(self, area: str, action: str, model: type[Model] | None = None) -> bool:
        """``action`` is one of view, add, change, delete. A token asks its scopes; a staff user
        its Django permissions on the model (the same as in the back office)."""
        assert action in _ACTIONS
        if self.token is not None:
            return sc.allows(self.scopes, area, write=action != "view")
        if self.user is None or model is None:
            return False
        opts = model._meta
        if action == "view":
            return bool(
                self.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")
                or self.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
            )
        return bool(self.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}"))

    def actor(self, request: HttpRequest) -> Actor:
        return Actor(
            user_id=getattr(self.user, "pk", None),
            token_id=self.token.pk if self.token is not None else None,
            label=self.label,
            address=address_of(request.META),
            via="api",
        )


def caller_of(request: HttpRequest) -> Caller:
    auth = getattr(request, "auth", None)
    if not isinstance(auth, Caller):  # every management operation declares auth=MANAGEMENT
        raise Problem(401, "Unauthorized", "A valid API token is required (Authorization: Bearer <token>).")
    return auth


def count_request(token: ApiToken, now: Any = None) -> None:
    """Count one request in the token's current minute; over ``token.rate_limit`` it is answered
    429 with Retry-After (the seconds until the next minute). The count lives in the database:
    every process of a deployment shares it."""
    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    windows = RateWindow.objects.filter(token=token, minute=minute)
    with transaction.atomic():
        if not windows.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    RateWindow.objects.create(token=token, minute=minute, count=1)
            except IntegrityError:  # another process opened the window first
                windows.update(count=F("count") + 1)
            RateWindow.objects.filter(token=token, minute__lt=minute - WINDOWS_KEPT).delete()
        count = windows.values_list("count", flat=True).first() or 0
    if count > token.rate_limit:
        retry = max(1, 60 - now.second)
        raise Problem(
            429,
            "Too many requests",
            f"Token {token.prefix}… may make {token.rate_limit} requests per minute; try again in {retry} s.",
            headers={"Retry-After": str(retry)},
        )


class ManagementToken(HttpBearer):
    """A customer's (its subtree) or an operator's token, within its expiry and rate limit."""

    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        found = ApiToken.find(token)
        if found is None:
            return None
        if found.switch_id is not None:
            raise Problem(403, *wrong_token("switch", "operator"))
        customer = found.customer
        if customer is not None and customer.status != "active":
            raise Problem(
                403,
                "Forbidden",
                f"The token's customer {customer.account_code} is {customer.status}: "
                "its tokens are refused until it is active again.",
            )
        count_request(found)
        now = timezone.now()
        if found.last_used_at is None or (now - found.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        return Caller(
            label=f"token {found.name} ({found.prefix}…)", root=customer, token=found, scopes=frozenset(found.scopes)
        )


class StaffSession(APIKeyCookie):
    """A logged-in, active staff user of the back office (the browser): the session cookie, and
    Django's CSRF check on unsafe methods (POST, PATCH, DELETE) as for any form of the back office."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.COOKIES.get(self.param_name)
        if key and check_csrf(request) is not None:
            raise Problem(
                403, "CSRF check failed", "A browser session must send the X-CSRFToken header on unsafe methods."
            )
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Caller | None:
        user = getattr(request, "user", None)
        if not key or user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
            return None
        return Caller(label=f"user {user.get_username()}", root=None, user=user)


MANAGEMENT = [ManagementToken(), StaffSession()]
