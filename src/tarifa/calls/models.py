"""State of calls in progress, kept in the database so every app process sees the same:
balance reservations (DESIGN.md §6) and the concurrent-call / CPS counters."""

from __future__ import annotations

from django.db import models

from tarifa.fields import LabeledCharField, money_field


class Reservation(models.Model):
    """A call in progress holds its maximum possible cost until its CDR is posted or it expires."""

    switch = LabeledCharField("switch", max_length=64)
    call_id = LabeledCharField("call id", max_length=255)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="reservations")
    account = models.ForeignKey("customers.Account", on_delete=models.CASCADE, related_name="reservations")
    own_balance = models.BooleanField("on the account's own balance", default=False)
    # No database constraint: its check at commit would share-lock the connection row, and every
    # concurrent authorisation routed through the same connection would queue on that one row
    # (migration calls 0005). Deleting a connection still nulls its reservations (Django's SET_NULL).
    connection = models.ForeignKey(
        "routing.Connection", null=True, blank=True, on_delete=models.SET_NULL, related_name="reservations",
        db_index=False, db_constraint=False,
    )
    device = models.CharField("device", max_length=24, blank=True, help_text="sip:<id> or ip:<id> of the device.")
    amount = money_field("Reserved amount")
    max_duration = models.PositiveIntegerField("max duration (s)")
    created_at = models.DateTimeField("created at")
    expires_at = models.DateTimeField("expires at", db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["switch", "call_id"], name="reservation_unique_call")]
        # customer and account are indexed by their foreign keys
        indexes = [models.Index(fields=["connection"]), models.Index(fields=["device"])]

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
    reason = models.CharField(max_length=32)
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
