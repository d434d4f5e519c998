"""API tokens: a switch (POP) token for call authorisation and CDR push, a customer's (its subtree),
or an operator's (everything); scopes, expiry, revocation; per-token rate-limit windows."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tarifa import validators as v
from tarifa.core import scopes as sc
from tarifa.fields import LabeledCharField


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_token() -> str:
    return "trf_" + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    name = LabeledCharField("name", max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField("token starts with", max_length=8, editable=False)
    switch = models.ForeignKey(
        "routing.Pop",
        verbose_name="switch (POP)",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text="Tokens of a switch may authorise calls and push CDRs.",
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text="Tokens of a customer see that customer's subtree only.",
    )
    operator = models.BooleanField(
        "operator token",
        default=False,
        help_text="An operator token sees every customer; give it neither a switch nor a customer.",
    )
    scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="What the token may do: read, full, switch, or per area (customers:read, rates:write, ...).",
    )
    expires_at = models.DateTimeField("expires at", null=True, blank=True, help_text="Empty: never expires.")
    rate_limit = models.PositiveIntegerField(
        "requests per minute",
        default=600,
        help_text="Management API requests per minute; more are answered 429 with Retry-After.",
    )
    active = models.BooleanField(default=True, help_text="Untick to revoke the token at once.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["name"]
        constraints = [
            # A token speaks for exactly one party: a switch (authorisation, CDR push) or a customer (its
            # subtree's data). Both would mix the two scopes; neither would be a token for nothing.
            models.CheckConstraint(
                condition=Q(switch__isnull=False, customer__isnull=True, operator=False)
                | Q(switch__isnull=True, customer__isnull=False, operator=False)
                | Q(switch__isnull=True, customer__isnull=True, operator=True),
                name="api_token_switch_customer_or_operator",
                violation_error_message=(
                    "An API token belongs to a switch (POP), to a customer or to the operator: exactly one of them."
                ),
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if self.switch_id is not None and self.customer_id is not None:
            raise ValidationError(
                {
                    "customer": v.refuse(
                        "Customer",
                        str(self.customer),
                        "a token of a switch (POP) cannot also belong to a customer; issue one token for each",
                    )
                }
            )
        owners = (self.switch_id is not None) + (self.customer_id is not None) + bool(self.operator)
        if owners == 0:
            raise ValidationError(
                {
                    "switch": v.refuse(
                        "Switch (POP)",
                        None,
                        "a token belongs to a switch (POP), to a customer or to the operator: choose one",
                    )
                }
            )
        if self.operator and owners > 1:
            raise ValidationError(
                {"operator": v.refuse("Operator token", "yes", "an operator token has neither a switch nor a customer")}
            )
        if not self.scopes and not self.operator:  # as ``issue`` does: a switch's "switch", a customer's "read"
            self.scopes = [sc.SWITCH] if self.switch_id is not None else [sc.READ]
        if not isinstance(self.scopes, list) or not all(isinstance(s, str) for s in self.scopes):
            raise ValidationError({"scopes": v.refuse("Scopes", str(self.scopes), "must be a list of scope names")})
        problems = sc.refusals(self.scopes)
        if self.switch_id is not None and self.scopes != [sc.SWITCH]:
            problems.append(f"scopes {self.scopes} is refused: a switch's token has exactly the scope 'switch'")
        if self.switch_id is None and sc.SWITCH in self.scopes:
            problems.append("scope 'switch' is refused: only a switch's token has it")
        if problems:
            raise ValidationError({"scopes": problems})

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def kind(self) -> str:
        """``switch``, ``customer`` (a reseller's too: its subtree) or ``operator``."""
        return "switch" if self.switch_id is not None else ("customer" if self.customer_id is not None else "operator")

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @classmethod
    def issue(cls, name: str, **scope: object) -> tuple[ApiToken, str]:
        """Create a token; the raw value is returned once and only its hash is stored. Without
        ``scopes``, a switch's token gets ``switch`` and a customer's ``read`` (its subtree, read only)."""
        raw = new_raw_token()
        if "scopes" not in scope:
            scope["scopes"] = [sc.SWITCH] if scope.get("switch") is not None else [sc.READ]
        token = cls.objects.create(name=name, key_hash=hash_token(raw), prefix=raw[:8], **scope)
        return token, raw

    @classmethod
    def find(cls, raw: str) -> ApiToken | None:
        """The active, unexpired token of a raw value, or None."""
        found = cls.objects.select_related("switch", "customer").filter(key_hash=hash_token(raw), active=True).first()
        return None if found is None or found.expired() else found


class RateWindow(models.Model):
    """How many management-API requests a token made in one minute: the rate limit's only state,
    in the database so that every process of a deployment counts the same requests."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="rate_windows")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "API rate-limit window"
        constraints = [models.UniqueConstraint(fields=["token", "minute"], name="api_rate_window_once")]

    def __str__(self) -> str:
        return f"{self.token_id} {self.minute:%H:%M}: {self.count}"
