"""API authentication by bearer token (see ``ApiToken``)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from tarifa.api.models import ApiToken


class SwitchToken(HttpBearer):
    """A token issued to a switch (POP): call authorisation and CDR push."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = ApiToken.find(token)
        if found is None or found.switch_id is None:
            return None
        if found.last_used_at is None or (timezone.now() - found.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        return found


class CustomerToken(HttpBearer):
    """A token issued to a customer: sees that customer's subtree only."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = ApiToken.find(token)
        if found is None or found.customer_id is None:
            return None
        return found
