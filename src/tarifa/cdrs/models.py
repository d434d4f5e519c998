"""Call detail records: one row per call leg, rated on both sides (customer price, vendor cost)."""

from __future__ import annotations

from django.db import models

from tarifa.cdrs.choices import Direction, Disposition, RatingStatus
from tarifa.fields import LabeledCharField, choice_field, money_field


class Cdr(models.Model):
    switch = LabeledCharField("switch", max_length=64, help_text="Name of the switch that sent the record.")
    call_id = LabeledCharField("call id", max_length=255)
    leg = LabeledCharField("leg", max_length=16, default="a")
    direction = choice_field("Direction", Direction, default=Direction.OUTBOUND)
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="cdrs"
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="cdrs"
    )
    caller = LabeledCharField("caller", max_length=64, blank=True)
    callee = LabeledCharField("callee (as dialled)", max_length=64)
    number = LabeledCharField("normalised number", max_length=15, blank=True)
    source_ip = models.GenericIPAddressField("source IP", null=True, blank=True)
    start_time = models.DateTimeField("start time")
    connect_time = models.DateTimeField("connect time", null=True, blank=True)
    end_time = models.DateTimeField("end time", null=True, blank=True)
    duration = models.PositiveIntegerField("billable duration (s)", default=0)
    disposition = choice_field("Disposition", Disposition, default=Disposition.ANSWERED)
    sip_code = models.PositiveSmallIntegerField("SIP code", null=True, blank=True)
    connection = models.ForeignKey(
        "routing.Connection", null=True, blank=True, on_delete=models.PROTECT, related_name="cdrs"
    )
    prefix = LabeledCharField("matched prefix", max_length=15, blank=True)
    destination = LabeledCharField("destination", max_length=100, blank=True)
    billed_seconds = models.PositiveIntegerField("billed seconds", default=0)
    price = money_field("Customer price")
    cost = money_field("Vendor cost")
    margin = money_field("Margin")
    rating_status = choice_field("Rating status", RatingStatus, default=RatingStatus.PENDING)
    unrated_reason = LabeledCharField("unratable reason", max_length=64, blank=True)
    rated_at = models.DateTimeField("rated at", null=True, blank=True)
    received_at = models.DateTimeField("received at", auto_now_add=True)

    class Meta:
        verbose_name = "CDR"
        ordering = ["-start_time", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["switch", "call_id", "leg"], name="cdr_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["customer", "start_time"]),
            models.Index(fields=["account", "start_time"]),
            models.Index(fields=["rating_status"]),
            models.Index(fields=["start_time"]),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} {self.caller} -> {self.callee}"
