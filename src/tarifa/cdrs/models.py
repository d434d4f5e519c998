"""Call detail records: one row per call leg, rated on both sides (customer price, vendor cost)."""

from __future__ import annotations

from django.db import models

from tarifa.cdrs.choices import (
    DIRECTION_LABELS,
    DISPOSITION_LABELS,
    RATING_STATUS_LABELS,
    Direction,
    Disposition,
    RatingStatus,
)
from tarifa.fields import LabeledCharField, choice_field, money_field


class Cdr(models.Model):
    switch = LabeledCharField("switch", max_length=64, help_text="Name of the switch that sent the record.")
    call_id = LabeledCharField("call id", max_length=255)
    leg = LabeledCharField("leg", max_length=16, default="a")
    direction = choice_field("Direction", DIRECTION_LABELS, default=Direction.OUTBOUND)
    # Indexed together with start_time below; no separate single-column indexes (faster inserts).
    # No database-level foreign keys on this table (db_constraint=False): a per-row referential
    # check costs more than the rest of the insert; ingestion locks (FOR KEY SHARE) each account,
    # customer and connection a batch refers to instead, once per batch, and deletes are refused
    # by the ORM (PROTECT) as before. See docs/cdr-ingestion.md.
    account = models.ForeignKey(
        "customers.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cdrs",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cdrs",
        db_index=False,
        db_constraint=False,
    )
    caller = LabeledCharField("caller", max_length=64, blank=True)
    callee = LabeledCharField("callee (as dialled)", max_length=64)
    number = LabeledCharField("normalised number", max_length=15, blank=True)
    source_ip = models.GenericIPAddressField("source IP", null=True, blank=True)
    # Identity data as the switch sent it, kept so an unratable call can be matched again later.
    sip_user = LabeledCharField("SIP user", max_length=64, blank=True)
    trunk = LabeledCharField("trunk", max_length=64, blank=True)
    did = LabeledCharField("DID", max_length=20, blank=True)
    extension = LabeledCharField("extension", max_length=20, blank=True)
    account_code = LabeledCharField("account code (switch)", max_length=64, blank=True)
    connection_name = LabeledCharField("connection (switch)", max_length=100, blank=True)
    start_time = models.DateTimeField("start time")
    connect_time = models.DateTimeField("connect time", null=True, blank=True)
    end_time = models.DateTimeField("end time", null=True, blank=True)
    duration = models.PositiveIntegerField("billable duration (s)", default=0)
    disposition = choice_field("Disposition", DISPOSITION_LABELS, default=Disposition.ANSWERED)
    sip_code = models.PositiveSmallIntegerField("SIP code", null=True, blank=True)
    connection = models.ForeignKey(
        "routing.Connection",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cdrs",
        db_index=False,
        db_constraint=False,
    )
    prefix = LabeledCharField("matched prefix", max_length=15, blank=True)
    destination = LabeledCharField("destination", max_length=100, blank=True)
    billed_seconds = models.PositiveIntegerField("billed seconds", default=0)
    price = money_field("Customer price")
    cost = money_field("Vendor cost")
    margin = money_field("Margin")
    rating_status = choice_field("Rating status", RATING_STATUS_LABELS, default=RatingStatus.PENDING)
    unrated_reason = LabeledCharField("unratable reason", max_length=64, blank=True)
    rated_at = models.DateTimeField("rated at", null=True, blank=True)
    received_at = models.DateTimeField("received at", auto_now_add=True)
    pool_key = LabeledCharField("included-minutes pool", max_length=40, blank=True)
    pool_seconds = models.PositiveIntegerField("seconds from included minutes", default=0)
    # What a revenue-share DID credited its owner for this inbound call (docs/origination.md):
    # posted with the batch's other out-payments of the same balance as one credit Transaction.
    out_payment = money_field("Out-payment credited")
    # The call_charge Transaction that charged this call: one per balance and ingest batch, its
    # amount the sum of the prices of the calls pointing to it (docs/cdr-ingestion.md). Not
    # indexed: nothing searches CDRs by it on the hot path; a charge lists its calls rarely.
    transaction = models.ForeignKey(
        "billing.Transaction",
        verbose_name="charged by",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        editable=False,
        db_index=False,
        db_constraint=False,
    )
    batch = models.BigIntegerField("ingest batch", null=True, blank=True, editable=False)
    ingest_run = models.ForeignKey(
        "IngestRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cdrs",
        editable=False,
        db_index=False,
        db_constraint=False,
    )
    rerate_run = models.ForeignKey(
        "RerateRun",
        verbose_name="last re-rating",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cdrs",
        editable=False,
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        verbose_name = "CDR"
        ordering = ["-start_time", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["switch", "call_id", "leg"], name="cdr_idempotency_key"),
        ]
        indexes = [
            # The portal's call history reads a customer's calls newest first and pages by key,
            # (start_time, id) < (t, n): the id in the index keeps every page an index range in
            # order on PostgreSQL too (SQLite's indexes end with the rowid anyway).
            models.Index(fields=["customer", "start_time", "id"], name="cdr_customer_start_id"),
            models.Index(fields=["account", "start_time"]),
            # Only the few calls that need attention are indexed by status (the unratable queue).
            models.Index(
                fields=["rating_status"],
                condition=~models.Q(rating_status=RatingStatus.RATED.value),
                name="cdr_needs_attention",
            ),
            models.Index(fields=["start_time"]),
            # The calls a Transaction charged: the invoice run groups a period's call charges by destination.
            models.Index(fields=["transaction"], name="cdr_charged_by"),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} {self.caller} -> {self.callee}"


class IngestRun(models.Model):
    """One import of CDRs (a file or an API batch): what came in and what became of it."""

    source = LabeledCharField("source", max_length=255)
    switch = LabeledCharField("switch", max_length=64, blank=True)
    format = LabeledCharField("format", max_length=32)
    started_at = models.DateTimeField("started at", auto_now_add=True)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    received = models.PositiveIntegerField(default=0)
    stored = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    unrated = models.PositiveIntegerField(default=0)
    charged = money_field("Charged")
    started_by = LabeledCharField("started by", max_length=150, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.source} ({self.started_at:%Y-%m-%d %H:%M})"


class RerateRun(models.Model):
    """A re-rating: who did it, why, over what, and the money it moved."""

    started_by = LabeledCharField("re-rated by", max_length=150)
    reason = LabeledCharField("reason", max_length=500)
    criteria = LabeledCharField("criteria", max_length=500)
    started_at = models.DateTimeField("started at", auto_now_add=True)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    examined = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    still_unrated = models.PositiveIntegerField(default=0)
    adjustment_total = money_field("Adjustment total")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} by {self.started_by}: {self.reason}"
