"""State of calls in progress, kept in the database so every app process sees the same:
balance reservations (DESIGN.md §6) and the concurrent-call / CPS counters."""

from __future__ import annotations

from django.db import models

from tarifa.core.authorization import Refusal as Reason
from tarifa.fields import LabeledCharField, money_field

# The refusal reasons of core.authorization, as Django choices (labels for the back office).
REASON_CHOICES = [(reason.value, f"{reason.value.replace('_', ' ')} (SIP {reason.sip_code})") for reason in Reason]


class Reservation(models.Model):
    """A call in progress holds its maximum possible cost until its CDR is posted or it expires."""

    switch = LabeledCharField("switch", max_length=64)
    call_id = LabeledCharField("call id", max_length=255)
    # No database constraints on customer and account either (migration calls 0006): the rows are
    # the ones the authorisation just locked or read, and the checks at commit cost every call two
    # more lookups. Deleting a customer or an account still deletes its reservations (Django's
    # CASCADE). The account's and the device's reservations are counted among the customer's.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="reservations", db_constraint=False
    )
    account = models.ForeignKey(
        "customers.Account", on_delete=models.CASCADE, related_name="reservations", db_constraint=False, db_index=False
    )
    own_balance = models.BooleanField("on the account's own balance", default=False)
    # No database constraint: its check at commit would share-lock the connection row, and every
    # concurrent authorisation routed through the same connection would queue on that one row
    # (migration calls 0005). Deleting a connection still nulls its reservations (Django's SET_NULL).
    connection = models.ForeignKey(
        "routing.Connection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reservations",
        db_index=False,
        db_constraint=False,
    )
    device = models.CharField("device", max_length=24, blank=True, help_text="sip:<id> or ip:<id> of the device.")
    amount = money_field("Reserved amount")
    max_duration = models.PositiveIntegerField("max duration (s)")
    created_at = models.DateTimeField("created at")
    # Not indexed: only the worker's sweep looks reservations up by expiry, over the calls in
    # progress; every authorisation would pay for the index (migration calls 0006).
    expires_at = models.DateTimeField("expires at")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["switch", "call_id"], name="reservation_unique_call")]
        # customer is indexed by its foreign key
        indexes = [models.Index(fields=["connection"])]

    def __str__(self) -> str:
        return f"{self.call_id} {self.amount}"


class CallRate(models.Model):
    """Calls admitted in one second for one scope (customer, account, device, connection): CPS limits."""

    scope = models.CharField(max_length=40)
    second = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "second"], name="call_rate_unique")]


class Refusal(models.Model):
    """Refused call attempts per day, customer and reason: the dashboards' numbers."""

    day = models.DateField()
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.CASCADE)
    reason = models.CharField(max_length=32, choices=REASON_CHOICES)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "customer", "reason"], name="refusal_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.reason}: {self.count}"


class ConfigVersion(models.Model):
    """Bumped whenever tariffs, routes or accounts change: app processes drop their caches."""

    version = models.BigIntegerField(default=0)
