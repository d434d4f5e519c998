"""API tokens: a switch (POP) token for call authorisation and CDR push, or a customer-scoped one."""

from __future__ import annotations

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from tarifa import validators as v
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
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["name"]
        constraints = [
            # A token speaks for exactly one party: a switch (authorisation, CDR push) or a customer (its
            # subtree's data). Both would mix the two scopes; neither would be a token for nothing.
            models.CheckConstraint(
                condition=Q(switch__isnull=False, customer__isnull=True)
                | Q(switch__isnull=True, customer__isnull=False),
                name="api_token_switch_or_customer",
                violation_error_message="An API token belongs to a switch (POP) or to a customer: exactly one of them.",
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
        if self.switch_id is None and self.customer_id is None:
            raise ValidationError(
                {
                    "switch": v.refuse(
                        "Switch (POP)", None, "a token belongs to a switch (POP) or to a customer: choose one"
                    )
                }
            )

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, **scope: object) -> tuple[ApiToken, str]:
        """Create a token; the raw value is returned once and only its hash is stored."""
        raw = new_raw_token()
        token = cls.objects.create(name=name, key_hash=hash_token(raw), prefix=raw[:8], **scope)
        return token, raw

    @classmethod
    def find(cls, raw: str) -> ApiToken | None:
        return cls.objects.select_related("switch", "customer").filter(key_hash=hash_token(raw), active=True).first()
