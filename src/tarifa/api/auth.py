"""API authentication by bearer token (see ``ApiToken``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from tarifa.api.models import ApiToken, hash_token


@dataclass(frozen=True)
class SwitchIdentity:
    """Who is calling: the token's id and name and its switch (POP) name."""

    token_id: int
    name: str
    switch_name: str


# Token hash -> (identity, when looked up). Switches call on every call attempt; a revoked or
# deactivated token stops working within TOKEN_CACHE_SECONDS.
_known: dict[str, tuple[SwitchIdentity, float]] = {}
TOKEN_CACHE_SECONDS = 10.0


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, parsed as django-ninja's
    ``HttpBearer`` does (scheme case-insensitive, everything after the first space is the token)."""
    if not header:
        return None
    parts = header.split(" ")
    if parts[0].lower() != "bearer":
        if settings.DEBUG:
            logging.getLogger("django").error(f"Unexpected auth - '{header}'")
        return None
    return " ".join(parts[1:])


def switch_identity(token: str) -> SwitchIdentity | None:
    """The switch a token was issued to, or None; looked up at most every TOKEN_CACHE_SECONDS."""
    digest = hash_token(token)
    now = time.monotonic()
    held = _known.get(digest)
    if held is not None and now - held[1] < TOKEN_CACHE_SECONDS:
        return held[0]
    row = (
        ApiToken.objects.filter(key_hash=digest, active=True, switch__isnull=False)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .values_list("pk", "name", "switch__name", "last_used_at")
        .first()
    )
    if row is None:
        _known.pop(digest, None)
        return None
    if row[3] is None or (timezone.now() - row[3]).total_seconds() > 60:
        ApiToken.objects.filter(pk=row[0]).update(last_used_at=timezone.now())
    identity = SwitchIdentity(row[0], row[1], row[2])
    _known[digest] = (identity, now)
    return identity


def token_kind(token: str) -> str | None:
    """ "switch", "customer" or "operator": the kind of an active token, or None when there is no such
    token. Asked only once a token was refused for an operation, to say why (never on the way to a yes)."""
    found = ApiToken.find(token)
    return None if found is None else found.kind


class SwitchToken(HttpBearer):
    """A token issued to a switch (POP): call authorisation and CDR push."""

    def authenticate(self, request: HttpRequest, token: str) -> SwitchIdentity | None:
        from tarifa.api.problems import Problem, wrong_token

        identity = switch_identity(token)
        if identity is None:
            kind = token_kind(token)
            if kind is not None:
                raise Problem(403, *wrong_token(kind, "switch"))
        return identity


class CustomerToken(HttpBearer):
    """A token issued to a customer: sees that customer's subtree only."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        from tarifa.api.problems import Problem, wrong_token
        from tarifa.customers.choices import Status

        found = ApiToken.find(token)
        if found is None:
            return None
        if found.customer_id is None:
            raise Problem(403, *wrong_token(found.kind, "customer"))
        customer = found.customer
        assert customer is not None  # customer_id is set
        if customer.status != Status.ACTIVE:
            raise Problem(
                403,
                "Forbidden",
                f"The token's customer {customer.account_code} is "
                f"{customer.status}: its tokens are refused until it is active again.",
            )
        return found
